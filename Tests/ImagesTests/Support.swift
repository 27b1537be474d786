import Foundation
import ImagesTesting
@testable import Images
import Testing

/// A fresh directory under the temporary directory, 0700 as `mktemp -d` makes them.
func temporaryDirectory(_ label: String) throws -> URL {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-images-\(label)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    return url
}

