package redistest

import "strings"

// KeySlot is the Redis Cluster hash slot of key, computed here (CLUSTER KEYSLOT asks a
// node): the CRC16 (XMODEM) of the key, or of its hash tag (what is between its first {
// and the } after, when that is not empty), modulo 16384. It is written bit by bit, from
// the specification, not as the plugin's table.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	crc := 0
	for i := 0; i < len(key); i++ {
		crc ^= int(key[i]) << 8
		for b := 0; b < 8; b++ {
			crc <<= 1
			if crc&0x10000 != 0 {
				crc ^= 0x11021
			}
		}
	}
	return crc & 16383
}
