// test-pass: once
import { expect } from 'chai';
import { AddressSlots } from '../../../gateway/core/address-slots.js';

describe('core/address-slots', () => {
  it('grants up to the cap per address, refuses past it, and other addresses are unaffected', () => {
    const s = new AddressSlots(2);
    const a = [s.admit('10.0.0.1'), s.admit('10.0.0.1'), s.admit('10.0.0.1'), s.admit('10.0.0.1')];
    expect(a.map((t) => t.state)).to.deep.equal(['granted', 'granted', 'refused', 'refused']);
    expect(a.map((t) => t.firstRefusal), 'only the first refusal is to be logged').to.deep.equal([false, false, true, false]);
    expect(s.admit('10.0.0.2').state).to.equal('granted');
    a[0]!.release();
    a[0]!.release(); // idempotent
    a[2]!.release(); // a refused ticket holds nothing
    expect(s.held('10.0.0.1')).to.equal(1);
    const again = s.admit('10.0.0.1');
    expect(again.state).to.equal('granted');
    expect(s.admit('10.0.0.1').firstRefusal, 'below the cap in between: a new flood is reported again').to.equal(true);
  });

  it('queues past the cap in order, grants a waiting ticket when a slot frees, and forgets idle addresses', () => {
    const s = new AddressSlots(1, 2);
    const granted: string[] = [];
    const first = s.admit('10.0.0.1', () => granted.push('first'));
    const w1 = s.admit('10.0.0.1', () => granted.push('w1'));
    const w2 = s.admit('10.0.0.1', () => granted.push('w2'));
    const over = s.admit('10.0.0.1');
    expect([first, w1, w2, over].map((t) => t.state)).to.deep.equal(['granted', 'waiting', 'waiting', 'refused']);
    w1.release(); // left the queue before its turn
    expect(granted).to.deep.equal([]);
    first.release();
    expect(granted).to.deep.equal(['w2']);
    expect(w2.state).to.equal('granted');
    expect(s.held('10.0.0.1')).to.equal(1);
    w2.release();
    expect(s.held('10.0.0.1')).to.equal(0);
    expect(s.admit('10.0.0.1').state).to.equal('granted');
  });
});
