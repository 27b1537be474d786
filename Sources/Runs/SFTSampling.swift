import Foundation

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

enum SFTSampling {
    /// Fisher-Yates with our own bounded draw, so the order depends only on the seed (the
    /// standard library's `shuffled(using:)` is free to change its algorithm).
    static func shuffle<T>(_ items: [T], generator: inout SplitMix64) -> [T] {
        var items = items
        guard items.count > 1 else { return items }
        for index in stride(from: items.count - 1, to: 0, by: -1) {
            let other = generator.below(index + 1)
            if other != index { items.swapAt(index, other) }
        }
        return items
    }

    /// The generator for one task: the seed mixed with a stable hash of the instance id, so a
    /// task's choice does not depend on which other tasks the runs hold.
    static func generator(seed: UInt64, instanceID: String) -> SplitMix64 {
        var mixer = SplitMix64(seed: seed ^ fnv1a(instanceID))
        return SplitMix64(seed: mixer.next())
    }

    /// FNV-1a over the UTF-8 bytes: stable across processes (Swift's `Hasher` is seeded per process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// A patch with trailing whitespace dropped from every line and trailing blank lines
    /// removed, so patches that differ only there count as the same.
    static func normalizedPatch(_ patch: String) -> String {
        var lines = patch.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            var line = line
            while let last = line.last, last == " " || last == "\t" || last == "\r" { line = line.dropLast() }
            return line
        }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        return lines.joined(separator: "\n")
    }

    /// Estimated tokens: ceil(UTF-8 bytes / 4). There is no tokenizer at hand.
    static func estimatedTokens(bytes: Int) -> Int {
        (bytes + 3) / 4
    }
}
