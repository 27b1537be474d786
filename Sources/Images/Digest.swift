import CImageCodecs
import Foundation
import WardenCore

/// A content digest as OCI writes it: `sha256:` and 64 lower-case hex digits. Only SHA-256 is
/// accepted; the hex part is checked, so a digest is safe to use as a file name.
public struct Digest: Sendable, Hashable, CustomStringConvertible, Codable {
    public let hex: String

    public init(_ text: String) throws {
        guard text.hasPrefix("sha256:") else {
            throw WardenError("image.digest", "unsupported digest \"\(text)\": only sha256 is supported")
        }
        let hex = String(text.dropFirst(7))
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw WardenError("image.digest", "malformed digest \"\(text)\"")
        }
        self.hex = hex
    }

    init(hex: String) { self.hex = hex }

    public var description: String { "sha256:" + hex }

    public init(from decoder: any Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// The digest of `bytes`.
    public static func of(_ bytes: some DataProtocol) -> Digest {
        let hasher = SHA256()
        hasher.update(Array(bytes))
        return hasher.finish()
    }

    /// Fails with `context` when `bytes` do not have this digest.
    func verify(_ bytes: Data, context: String) throws {
        let actual = Digest.of(bytes)
        guard actual == self else {
            throw WardenError("image.digest", "content has digest \(actual), expected \(self)", context: context)
        }
    }
}

/// Incremental SHA-256 through libcrypto.
final class SHA256 {
    private let context: OpaquePointer

    init() {
        // Allocation failure is the only way these fail.
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        self.context = context
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything so far; the hasher is not used after.
    func finish() -> Digest {
        var output = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &output, &length)
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        for byte in output {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return Digest(hex: String(decoding: text, as: UTF8.self))
    }

    deinit { EVP_MD_CTX_free(context) }
}
