/// SplitMix64 (Steele, Lea and Flood): a tiny seeded generator whose sequence is fixed by its
/// seed on every platform and toolchain, unlike `SystemRandomNumberGenerator`.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<bound`, by rejection so no value is favoured.
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "the bound must be positive")
        let range = UInt64(bound)
        // The largest multiple of `range` that fits; draws at or above it are redrawn.
        let limit = UInt64.max - UInt64.max % range
        while true {
            let draw = next()
            if draw < limit { return Int(draw % range) }
        }
    }
}

/// 64-bit FNV-1a over the UTF-8 bytes: stable across processes and runs, unlike Swift's
/// `Hasher`, which is seeded per process. For shard assignment, seeds and file names, never
/// for anything an adversary chooses to collide.
public func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01B3
    }
    return hash
}
