import Foundation
import WardenCore

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
