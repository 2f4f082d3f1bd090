//! Run-length encoding of a binary mask, as plugin-api's `Mask` holds it.

/// Alternating counts of background and foreground pixels in row-major order, background
/// first (so a mask whose first pixel is foreground starts with 0).
pub fn runs_of_bits(bits: &[bool]) -> Vec<u32> {
    let mut runs = Vec::new();
    let (mut current, mut count) = (false, 0u32);
    for &bit in bits {
        if bit != current {
            runs.push(count);
            current = bit;
            count = 0;
        }
        count += 1;
    }
    runs.push(count);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_start_with_background() {
        assert_eq!(runs_of_bits(&[false, false, true, true, true, false]), [2, 3, 1]);
        assert_eq!(runs_of_bits(&[true, false]), [0, 1, 1]);
        assert_eq!(runs_of_bits(&[]), [0]);
    }
}
