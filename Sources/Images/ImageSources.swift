import Foundation
import WardenCore

/// Where a blob's bytes are: a file, or a region of one (a member of a `docker save` archive).
struct BlobLocation: Sendable {
    var path: String
    var offset: Int64 = 0
    var length: Int64?
}

/// One layer to unpack: where it is and the digest its raw bytes must have (nil when the source
/// gives none to check against).
struct LayerBlob: Sendable {
    var location: BlobLocation
    var expected: Digest?
    var name: String
}

/// An image found in a source: its config and its layers, bottom first.
struct ResolvedImage: Sendable {
    /// The config blob's digest: the image's identity in the store.
    var id: Digest
    var configuration: ImageConfiguration
    var rawConfiguration: Data
    var layers: [Descriptor]
}

/// A place images come from.
protocol ImageSource: Sendable {
    /// Names the image in messages.
    var name: String { get }
    func resolve() async throws -> ResolvedImage
    /// Makes the layer readable from a file (a registry downloads it into `blobs`).
    func fetch(_ layer: Descriptor, index: Int, of image: ResolvedImage, blobs: URL) async throws -> LayerBlob
}

/// How a task names its image: `oci:DIR[:TAG]` (an OCI image layout), `docker-archive:FILE`
/// (a `docker save` tarball) or a registry reference (`[host/]repository[:tag][@digest]`),
/// as skopeo names them.
public enum ImageName: Sendable, Hashable, CustomStringConvertible {
    case layout(path: String, tag: String?)
    case dockerArchive(path: String)
    case registry(ImageReference)

    public init(_ text: String) throws {
        if text.hasPrefix("oci:") {
            let rest = String(text.dropFirst(4))
            // A tag follows the last colon when what follows has no slash: oci:/images/x:latest.
            if let colon = rest.lastIndex(of: ":"), !rest[rest.index(after: colon)...].contains("/") {
                self = .layout(path: String(rest[..<colon]), tag: String(rest[rest.index(after: colon)...]))
            } else {
                self = .layout(path: rest, tag: nil)
            }
        } else if text.hasPrefix("docker-archive:") {
            self = .dockerArchive(path: String(text.dropFirst(15)))
        } else {
            self = .registry(try ImageReference(text.hasPrefix("docker://") ? String(text.dropFirst(9)) : text))
        }
    }

    public var description: String {
        switch self {
        case let .layout(path, tag): "oci:" + path + (tag.map { ":" + $0 } ?? "")
        case let .dockerArchive(path): "docker-archive:" + path
        case let .registry(reference): reference.description
        }
    }
}

/// A registry image reference, normalized as Docker does: `python` is
/// `registry-1.docker.io/library/python:latest`.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// The registry's host[:port] as written (Docker Hub is `docker.io`).
    public var registry: String
    public var repository: String
    public var tag: String?
    public var digest: Digest?

    public init(_ text: String) throws {
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            digest = try Digest(String(rest[rest.index(after: at)...]))
            rest = rest[..<at]
        }
        var registry = "docker.io"
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" {
                registry = String(first)
                rest = rest[rest.index(after: slash)...]
            }
        }
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        if digest == nil && tag == nil { tag = "latest" }
        var repository = String(rest)
        if registry == "docker.io" && !repository.contains("/") { repository = "library/" + repository }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789._-/")
        guard !repository.isEmpty, repository.allSatisfy({ allowed.contains($0) }), !repository.split(separator: "/").contains("..") else {
            throw WardenError("image.name", "\"\(text)\" is not a valid image reference (repository names are lower-case letters, digits, . _ - and /)")
        }
        self.registry = registry
        self.repository = repository
    }

    /// What the manifest is asked for by: the digest when pinned, else the tag.
    var manifestReference: String { digest?.description ?? tag ?? "latest" }

    public var description: String {
        "\(registry)/\(repository)" + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0.description } ?? "")
    }
}

// MARK: - OCI image layout

/// An OCI image layout directory: `oci-layout`, `index.json` and `blobs/sha256/`.
struct LayoutSource: ImageSource {
    var path: String
    var tag: String?

    var name: String { "oci:" + path + (tag.map { ":" + $0 } ?? "") }

    private func blob(_ digest: Digest) -> String { path + "/blobs/sha256/" + digest.hex }

    private func read(_ descriptor: Descriptor) throws -> Data {
        let file = blob(descriptor.digest)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
            throw WardenError("image.layout", "the layout has no blob \(descriptor.digest)", context: path)
        }
        try descriptor.digest.verify(data, context: file)
        return data
    }

    func resolve() async throws -> ResolvedImage {
        let indexData: Data
        do { indexData = try Data(contentsOf: URL(fileURLWithPath: path + "/index.json")) } catch {
            throw WardenError("image.layout", "not an OCI image layout (no readable index.json)", context: path)
        }
        var index = try decodeJSON(ImageIndex.self, indexData, what: "index.json", context: path)
        while true {
            let chosen: Descriptor
            if let tag {
                guard let tagged = index.manifests.first(where: { $0.annotations?["org.opencontainers.image.ref.name"] == tag }) else {
                    throw WardenError("image.layout", "no image tagged \"\(tag)\" in index.json", context: path)
                }
                chosen = tagged
            } else if index.manifests.count == 1 {
                chosen = index.manifests[0]
            } else {
                chosen = try index.linuxAMD64(context: path)
            }
            let data = try read(chosen)
            if MediaType.isIndex(chosen.mediaType) {
                index = try decodeJSON(ImageIndex.self, data, what: "the nested index", context: path)
                if index.manifests.count > 1 { index.manifests = [try index.linuxAMD64(context: path)] }
                continue
            }
            let manifest = try decodeJSON(ImageManifest.self, data, what: "the manifest \(chosen.digest)", context: path)
            let raw = try read(manifest.config)
            return ResolvedImage(id: manifest.config.digest, configuration: try ImageConfiguration.parse(raw, context: path),
                                 rawConfiguration: raw, layers: manifest.layers)
        }
    }

    func fetch(_ layer: Descriptor, index: Int, of image: ResolvedImage, blobs: URL) async throws -> LayerBlob {
        LayerBlob(location: BlobLocation(path: blob(layer.digest)), expected: layer.digest, name: "\(name) layer \(layer.digest)")
    }
}

// MARK: - docker save archive

/// A `docker save` tarball: `manifest.json` naming the config and the layer members.
struct DockerArchiveSource: ImageSource {
    var path: String

    var name: String { "docker-archive:" + path }

    private struct Entry: Decodable {
        var Config: String
        var Layers: [String]
    }

    /// Every member's location in the (uncompressed) archive.
    private func members() throws -> [String: BlobLocation] {
        let file = try FileRegion(path: path)
        let counter = CountingSource(file)
        let reader = TarReader(counter, context: path)
        var found: [String: BlobLocation] = [:]
        while let entry = try reader.next() {
            guard entry.kind == .file, let name = try LayerUnpacker.normalize(entry.path, context: path) else { continue }
            found[name] = BlobLocation(path: path, offset: counter.consumed, length: entry.size)
        }
        return found
    }

    private func read(_ location: BlobLocation) throws -> Data {
        guard let length = location.length, length <= 64 << 20 else {
            throw WardenError("image.archive", "a metadata member is larger than 64 MiB", context: path)
        }
        return Data(try FileRegion(path: location.path, offset: location.offset, length: length).readFully(Int(length)))
    }

    func resolve() async throws -> ResolvedImage {
        let members = try members()
        guard let manifestLocation = members["manifest.json"] else {
            throw WardenError("image.archive", "not a docker save archive (no manifest.json)", context: path)
        }
        let entries = try decodeJSON([Entry].self, try read(manifestLocation), what: "manifest.json", context: path)
        guard entries.count == 1, let entry = entries.first else {
            throw WardenError("image.archive", "the archive holds \(entries.count) images; Warden needs exactly one", context: path)
        }
        guard let configLocation = try LayerUnpacker.normalize(entry.Config, context: path).flatMap({ members[$0] }) else {
            throw WardenError("image.archive", "manifest.json names a config \(entry.Config) the archive does not hold", context: path)
        }
        let raw = try read(configLocation)
        let configuration = try ImageConfiguration.parse(raw, context: path)
        guard configuration.diffIDs.count == entry.Layers.count else {
            throw WardenError("image.archive", "the config lists \(configuration.diffIDs.count) layers but manifest.json \(entry.Layers.count)",
                              context: path)
        }
        // Layers are plain tar members here; their digests are the config's diff_ids. The
        // member's path goes in the annotations so `fetch` can find it again.
        let layers = try zip(entry.Layers, configuration.diffIDs).map { member, diffID in
            guard let location = try LayerUnpacker.normalize(member, context: path).flatMap({ members[$0] }) else {
                throw WardenError("image.archive", "manifest.json names a layer \(member) the archive does not hold", context: path)
            }
            return Descriptor(mediaType: nil, digest: diffID, size: location.length ?? 0, platform: nil,
                              annotations: ["offset": String(location.offset)])
        }
        return ResolvedImage(id: Digest.of(raw), configuration: configuration, rawConfiguration: raw, layers: layers)
    }

    func fetch(_ layer: Descriptor, index: Int, of image: ResolvedImage, blobs: URL) async throws -> LayerBlob {
        let offset = layer.annotations?["offset"].flatMap { Int64($0) } ?? 0
        // A compressed member's digest is not its diff_id; only plain tar members are checked.
        return LayerBlob(location: BlobLocation(path: path, offset: offset, length: layer.size), expected: layer.digest,
                         name: "\(name) layer \(index + 1)")
    }
}

/// Counts the bytes read through it (where a tar member's content starts).
final class CountingSource: ByteSource {
    private let inner: any ByteSource
    private(set) var consumed: Int64 = 0

    init(_ inner: any ByteSource) { self.inner = inner }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let got = try inner.read(into: buffer)
        consumed += Int64(got)
        return got
    }
}

/// Image names made from instance ids, for suites whose rows name no image.
public enum ImageTemplate {
    /// SWE-bench's public images: `swebench/sweb.eval.x86_64.{instance}:latest`.
    public static let swebench = "swebench/sweb.eval.x86_64.{instance}:latest"

    /// Replaces `{instance}` with the id in SWE-bench's image naming (lower case, `__` written
    /// `_1776_`, as Docker names allow no double underscore there) and `{id}` with the id as is.
    /// The template "swebench" is short for ``swebench``.
    public static func expand(_ template: String, instanceID: String) -> String {
        let template = template == "swebench" ? swebench : template
        let swebench = instanceID.lowercased().replacingOccurrences(of: "__", with: "_1776_")
        return template.replacingOccurrences(of: "{instance}", with: swebench).replacingOccurrences(of: "{id}", with: instanceID)
    }
}
