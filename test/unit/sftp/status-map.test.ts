// test-pass: once
import { expect } from 'chai';
import { PgwError } from '../../../gateway/core/errors.js';
import { SFTP_STATUS, SftpStatusError, toStatus, noSuchFile } from '../../../gateway/sftp/status-map.js';

describe('sftp/status-map', () => {
  it('puts the stable code first in the message', () => {
    const s = toStatus(new PgwError('limits.upload_size', undefined, { limit: 10 }));
    expect(s).to.deep.equal({ status: SFTP_STATUS.FAILURE, message: 'limits.upload_size: the file exceeds the maximum upload size', code: 'limits.upload_size' });
    expect(toStatus(new PgwError('limits.open_files')).message).to.match(/^limits\.open_files: /);
  });
  it('maps permission codes to PERMISSION_DENIED', () => {
    expect(toStatus(new PgwError('upload.permission_denied')).status).to.equal(SFTP_STATUS.PERMISSION_DENIED);
    expect(toStatus(new PgwError('upload.name_invalid')).status).to.equal(SFTP_STATUS.PERMISSION_DENIED);
  });
  it('passes protocol answers through', () => {
    expect(toStatus(noSuchFile())).to.deep.equal({ status: SFTP_STATUS.NO_SUCH_FILE, message: 'no such file or directory' });
    expect(toStatus(new SftpStatusError(SFTP_STATUS.OP_UNSUPPORTED)).status).to.equal(SFTP_STATUS.OP_UNSUPPORTED);
  });
  it('maps errno codes without quoting the error, and disk-full to a stable code', () => {
    const enoent = Object.assign(new Error("ENOENT: no such file, open '/var/secret/path'"), { code: 'ENOENT' });
    expect(toStatus(enoent)).to.deep.equal({ status: SFTP_STATUS.NO_SUCH_FILE, message: 'no such file or directory' });
    const enospc = Object.assign(new Error('ENOSPC /data/tmp/x'), { code: 'ENOSPC' });
    expect(toStatus(enospc).message).to.match(/^upload\.storage_failed: /);
  });
  it('never leaks the text of unexpected errors', () => {
    const s = toStatus(new Error('SyntaxError near "999999990 Jansen"'));
    expect(s.status).to.equal(SFTP_STATUS.FAILURE);
    expect(s.message).to.not.include('Jansen');
    expect(toStatus('weird').status).to.equal(SFTP_STATUS.FAILURE);
  });
});
