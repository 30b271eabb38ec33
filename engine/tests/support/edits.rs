//! Byte edits for the fuzz targets (shared by the engine's and the node's
//! fuzz tests): at a position (modulo the length), delete, insert or
//! replace a byte, or cut the rest.

/// (position, operation 0..4, byte).
pub type Edit = (usize, u8, u8);

/// Applies `edits` to `bytes` in order.
pub fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for &(at, op, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let i = at % bytes.len();
        match op {
            0 => {
                bytes.remove(i);
            }
            1 => bytes.insert(i, byte),
            2 => bytes[i] = byte,
            _ => bytes.truncate(i),
        }
    }
}
