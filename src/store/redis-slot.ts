/**
 * The Redis Cluster hash slot of a key: CRC16 (XMODEM) of its hash tag (the text inside the first
 * {...} when that is not empty) or of the whole key, mod 16384, as the cluster specification
 * defines it. The store groups a send's keys by slot with it, so that each script it runs on a
 * cluster touches one slot.
 */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc % 16384;
}
