//! TCP sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4), as pf's `SEQ_LT`/`SEQ_GEQ` macros do
//! it: `a` is before `b` when the signed 32-bit difference `a - b` is negative. Meaningful only for numbers
//! less than 2^31 apart, which is why a state must be synced before a flow advances that far.

/// `a` is strictly before `b`.
#[inline]
pub fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` is before or equal to `b`.
#[inline]
pub fn leq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// `a` is strictly after `b`.
#[inline]
pub fn gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// `a` is after or equal to `b`.
#[inline]
pub fn geq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// The signed distance from `b` to `a` (`a - b`), positive when `a` is after `b`.
#[inline]
pub fn diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn comparisons_wrap_around_zero() {
        assert!(lt(0xffff_fff0, 0x10));
        assert!(gt(0x10, 0xffff_fff0));
        assert!(geq(5, 5) && leq(5, 5) && !lt(5, 5) && !gt(5, 5));
        assert_eq!(diff(0x10, 0xffff_fff0), 0x20);
        assert_eq!(diff(0xffff_fff0, 0x10), -0x20);
    }

    proptest! {
        #[test]
        fn order_is_preserved_by_any_common_offset(a: u32, delta in 1u32..(1 << 31), offset: u32) {
            let b = a.wrapping_add(delta);
            prop_assert!(lt(a, b));
            prop_assert!(lt(a.wrapping_add(offset), b.wrapping_add(offset)));
            prop_assert!(gt(b.wrapping_add(offset), a.wrapping_add(offset)));
            prop_assert_eq!(diff(b, a), delta as i32);
        }

        #[test]
        fn exactly_one_of_lt_eq_gt_holds(a: u32, b: u32) {
            let count = [lt(a, b), a == b, gt(a, b)].iter().filter(|x| **x).count();
            // 2^31 apart is the single ambiguous distance: both look "before" the other.
            if a.wrapping_sub(b) == 1 << 31 {
                prop_assert!(lt(a, b) && lt(b, a));
            } else {
                prop_assert_eq!(count, 1);
            }
        }
    }
}
