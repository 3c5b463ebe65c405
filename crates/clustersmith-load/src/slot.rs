//! Hash slots of keys, as the cluster specification defines them: CRC16 (XMODEM) of the key,
//! or of the part between the first `{` and the next `}` when that part is not empty, modulo
//! 16384.

pub const SLOTS: usize = 16384;

/// The hash slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|b| *b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|b| *b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOTS as u16
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for byte in bytes {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots the servers gave for these keys (`CLUSTER KEYSLOT`, Redis 7.0.15).
    #[test]
    fn slots_match_the_servers() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"123456789"), 12739);
        // An empty tag hashes the whole key.
        assert_eq!(key_slot(b"{}foo"), 9500);
    }
}
