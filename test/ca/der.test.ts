import test from 'ava';
import { seq, time, tlv, uint } from '../../src/ca/der.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('der - lengths: short form below 128, long form above (X.690 §8.1.3)', (t) => {
  t.is(hex(tlv(0x04, Buffer.alloc(127))).slice(0, 4), '047f');
  t.is(hex(tlv(0x04, Buffer.alloc(128))).slice(0, 6), '048180');
  t.is(hex(tlv(0x04, Buffer.alloc(300))).slice(0, 8), '0482012c');
  t.is(hex(seq()), '3000');
});

test('der - INTEGER is minimal and positive (X.690 §8.3)', (t) => {
  t.is(hex(uint(Buffer.from('00007f', 'hex'))), '02017f');
  t.is(hex(uint(Buffer.from('80', 'hex'))), '02020080');
  t.is(hex(uint(Buffer.from('000080', 'hex'))), '02020080');
  t.is(hex(uint(Buffer.alloc(0))), '020100');
});

test('der - times: UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', (t) => {
  t.is(time(Date.UTC(2026, 0, 2, 3, 4, 5, 999)).toString('latin1').slice(2), '260102030405Z');
  t.is(time(Date.UTC(2026, 0, 2)).at(0), 0x17);
  t.is(time(Date.UTC(2050, 0, 1)).toString('latin1').slice(2), '20500101000000Z');
  t.is(time(Date.UTC(2050, 0, 1)).at(0), 0x18);
});
