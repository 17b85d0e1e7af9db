// test-pass: once
import { expect } from 'chai';
import { HandleBudget, HandleTable } from '../../../gateway/sftp/handle-table.js';

describe('sftp/handle-table', () => {
  it('hands out opaque random 4-byte handles', () => {
    const t = new HandleTable<string>(new HandleBudget(100));
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const h = t.add(`v${i}`)!;
      expect(h).to.have.length(4);
      ids.add(h.toString('hex'));
    }
    expect(ids.size).to.equal(50);
    expect([...ids].some((x) => x === '00000000' || x === '00000001')).to.equal(false);
  });

  it('caps open handles per connection across sessions and frees on take/drain', () => {
    const budget = new HandleBudget(3);
    const a = new HandleTable<number>(budget);
    const b = new HandleTable<number>(budget);
    const h1 = a.add(1)!;
    b.add(2);
    b.add(3);
    expect(a.add(4)).to.equal(null);
    expect(a.take(h1)).to.equal(1);
    expect(a.take(h1)).to.equal(undefined); // second CLOSE of the same handle
    expect(budget.inUse).to.equal(2);
    expect(a.add(5)).to.not.equal(null);
    expect(b.drain().sort()).to.deep.equal([2, 3]);
    expect(budget.inUse).to.equal(1);
  });

  it('rejects handles of the wrong length or unknown value', () => {
    const t = new HandleTable<number>(new HandleBudget(2));
    t.add(1);
    expect(t.get(Buffer.alloc(0))).to.equal(undefined);
    expect(t.get(Buffer.alloc(300))).to.equal(undefined);
    expect(t.get(Buffer.from([1, 2, 3, 4]))).to.equal(undefined);
  });
});
