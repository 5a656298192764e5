// The Redis Cluster hash slot of a key, as the server computes it: CRC16 (XMODEM) of the
// key, or of its hash tag (the text between its first `{` and the next `}`, when not
// empty), modulo 16384. RedisStore groups a Cluster's bucket writes by slot and by node
// with it, before ioredis routes each call.

const TABLE = new Uint16Array(256)
for (let i = 0; i < 256; i++) {
  let crc = i << 8
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1
  TABLE[i] = crc & 0xffff
}

const crc16 = (bytes: Uint8Array): number => {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!
  return crc
}

export const SLOTS = 16384

/** The hash slot of `key` (its UTF-8 bytes). */
export function keySlot (key: string): number {
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) key = key.slice(open + 1, close)
  }
  return crc16(Buffer.from(key)) % SLOTS
}
