//! BrushLabels masks in Label Studio's RLE: `@thi.ng/rle-pack` over an RGBA layer of the
//! image's size, of which the frontend reads the alpha byte. Every pixel is written as four
//! equal bytes (255 inside, 0 outside), as the SDK's `mask2rle` does.
//!
//! Bit stream, MSB first: 32 bits value count, 5 bits word size - 1 (7), 4 x 4 bits run-size
//! classes - 1 (3, 4, 8, 16 bits), then chunks: 1 bit run (1) or literal (0), 2 bits size
//! class, that many bits count - 1, then the value(s); zero bits pad the last byte.

use plugin_api::Mask;

const WORD_BITS: u32 = 8;
const SIZE_BITS: [u32; 4] = [3, 4, 8, 16];
/// The longest run one chunk can hold.
const MAX_CHUNK: u64 = 1 << 16;

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    filled: u32,
}

impl BitWriter {
    fn write(&mut self, value: u64, bits: u32) {
        for i in (0..bits).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.filled += 1;
            if self.filled == 8 {
                self.bytes.push(self.acc as u8);
                (self.acc, self.filled) = (0, 0);
            }
        }
    }

    /// Pads as the SDK's encoder does: always, a whole zero byte when already aligned.
    fn finish(mut self) -> Vec<u8> {
        let pad = 8 - self.filled;
        self.write(0, pad);
        self.bytes
    }
}

/// Encodes a mask; its size must be the image's size after EXIF orientation.
pub fn encode(mask: &Mask) -> Vec<u8> {
    let values = mask.width as u64 * mask.height as u64 * 4;
    let mut out = BitWriter::default();
    out.write(values, 32);
    out.write((WORD_BITS - 1) as u64, 5);
    for bits in SIZE_BITS {
        out.write((bits - 1) as u64, 4);
    }
    for (i, &run) in mask.runs.iter().enumerate() {
        let value = if i % 2 == 0 { 0 } else { 255 };
        let mut left = run as u64 * 4;
        while left > 0 {
            let count = left.min(MAX_CHUNK);
            let class = SIZE_BITS
                .iter()
                .position(|&bits| count - 1 < 1 << bits)
                .unwrap_or(SIZE_BITS.len() - 1);
            out.write(1, 1);
            out.write(class as u64, 2);
            out.write(count - 1, SIZE_BITS[class]);
            out.write(value, WORD_BITS);
            left -= count;
        }
    }
    out.finish()
}

/// Decodes Label Studio's RLE into its values (4 per pixel), as the frontend does. `None`
/// when the stream ends early.
pub fn decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut pos = 0usize;
    let mut read = |bits: u32| -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..bits {
            let byte = *bytes.get(pos / 8)?;
            v = (v << 1) | ((byte >> (7 - pos % 8)) & 1) as u64;
            pos += 1;
        }
        Some(v)
    };
    let count = read(32)? as usize;
    let word = read(5)? as u32 + 1;
    let mut sizes = [0u32; 4];
    for s in &mut sizes {
        *s = read(4)? as u32 + 1;
    }
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let run = read(1)? == 1;
        let class = read(2)? as usize;
        let n = read(sizes[class])? as usize + 1;
        if run {
            let v = read(word)? as u8;
            out.extend(std::iter::repeat_n(v, n));
        } else {
            for _ in 0..n {
                out.push(read(word)? as u8);
            }
        }
    }
    out.truncate(count);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mask from rows of '#' and '.'.
    fn mask(rows: &[&str]) -> Mask {
        let mut runs = vec![0u32];
        let mut fg = false;
        for c in rows.iter().flat_map(|r| r.chars()) {
            if (c == '#') != fg {
                runs.push(0);
                fg = !fg;
            }
            *runs.last_mut().expect("a run") += 1;
        }
        Mask {
            width: rows[0].len() as u32,
            height: rows.len() as u32,
            runs: runs.into(),
        }
    }

    #[test]
    fn matches_the_worked_example() {
        // W=2, H=1, mask [255, 0] (label-studio-protocol.md, section 3.5).
        let m = mask(&["#."]);
        assert_eq!(encode(&m), vec![0, 0, 0, 8, 57, 27, 252, 127, 241, 128, 0]);
    }

    #[test]
    fn round_trips() {
        let m = mask(&["..##....", "..####..", "########", "........"]);
        let decoded = decode(&encode(&m)).expect("decode");
        assert_eq!(decoded.len(), 8 * 4 * 4);
        let alpha: String = decoded
            .chunks(4)
            .map(|px| {
                assert!(px.iter().all(|v| *v == px[0]), "four equal bytes per pixel");
                if px[3] == 255 { '#' } else { '.' }
            })
            .collect();
        assert_eq!(alpha, "..##......####..########........");
    }

    #[test]
    fn long_runs_split_into_chunks() {
        // 1000 x 100 background pixels = 400000 values: seven chunks of at most 65536.
        let m = Mask {
            width: 1000,
            height: 100,
            runs: vec![100_000u32].into(),
        };
        let bytes = encode(&m);
        let decoded = decode(&bytes).expect("decode");
        assert_eq!(decoded.len(), 400_000);
        assert!(decoded.iter().all(|v| *v == 0));
        // Header 57 bits + 7 chunks x 27 bits = 246 bits, padded to 31 bytes.
        assert_eq!(bytes.len(), 31);
    }

    #[test]
    fn a_truncated_stream_is_refused() {
        let bytes = encode(&mask(&["#.#."]));
        assert!(decode(&bytes[..bytes.len() - 3]).is_none());
    }
}
