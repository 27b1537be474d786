import Foundation
import WardenCore

/// A content descriptor of the OCI image spec: what a manifest says about a blob.
public struct Descriptor: Sendable, Codable, Hashable {
    public struct Platform: Sendable, Codable, Hashable {
        public var architecture: String
        public var os: String
        public var variant: String?
    }

    public var mediaType: String?
    public var digest: Digest
    public var size: Int64
    public var platform: Platform?
    public var annotations: [String: String]?
}

/// An image manifest (OCI or Docker schema 2): the config blob and the layers, bottom first.
struct ImageManifest: Codable {
    var mediaType: String?
    var config: Descriptor
    var layers: [Descriptor]
}

/// An image index (OCI) or manifest list (Docker): manifests for several platforms.
struct ImageIndex: Codable {
    var mediaType: String?
    var manifests: [Descriptor]

    /// The linux/amd64 manifest, the one the jail can run.
    func linuxAMD64(context: String) throws -> Descriptor {
        if let chosen = manifests.first(where: { $0.platform?.os == "linux" && $0.platform?.architecture == "amd64" }) { return chosen }
        let offered = manifests.compactMap { $0.platform.map { "\($0.os)/\($0.architecture)" } }
        throw WardenError("image.platform", "no linux/amd64 image in the index (it offers \(offered.isEmpty ? "none" : offered.joined(separator: ", ")))",
                          context: context)
    }
}

enum MediaType {
    static let ociIndex = "application/vnd.oci.image.index.v1+json"
    static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    static let dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

    static func isIndex(_ type: String?) -> Bool { type == ociIndex || type == dockerList }
}

/// The part of an image's config the jail honours.
public struct ImageConfiguration: Sendable, Hashable {
    /// `KEY=value` entries, in the image's order.
    public var environment: [String]
    public var workingDirectory: String?
    /// `user`, `uid`, `user:group` or `uid:gid`; nil or empty is root.
    public var user: String?
    /// The uncompressed digests of the layers, bottom first.
    public var diffIDs: [Digest]

    public init(environment: [String] = [], workingDirectory: String? = nil, user: String? = nil, diffIDs: [Digest] = []) {
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.user = user
        self.diffIDs = diffIDs
    }

    private struct Wire: Decodable {
        struct Config: Decodable {
            var Env: [String]?
            var WorkingDir: String?
            var User: String?
        }
        struct RootFS: Decodable { var diff_ids: [Digest]? }
        var architecture: String?
        var os: String?
        var config: Config?
        var rootfs: RootFS?
    }

    /// Parses an image config blob, refusing images for another platform.
    static func parse(_ data: Data, context: String) throws -> ImageConfiguration {
        let wire: Wire
        do { wire = try JSONDecoder().decode(Wire.self, from: data) } catch {
            throw WardenError("image.config", "the image config is not valid: \(error)", context: context)
        }
        if let os = wire.os, let architecture = wire.architecture, os != "linux" || architecture != "amd64" {
            throw WardenError("image.platform", "the image is for \(os)/\(architecture); the jail runs linux/amd64 only", context: context)
        }
        let workingDirectory = wire.config?.WorkingDir.flatMap { $0.isEmpty ? nil : $0 }
        return ImageConfiguration(environment: wire.config?.Env ?? [], workingDirectory: workingDirectory, user: wire.config?.User,
                                  diffIDs: wire.rootfs?.diff_ids ?? [])
    }
}

func decodeJSON<T: Decodable>(_ type: T.Type, _ data: Data, what: String, context: String) throws -> T {
    do { return try JSONDecoder().decode(type, from: data) } catch {
        throw WardenError("image.manifest", "\(what) is not valid: \(error)", context: context)
    }
}
