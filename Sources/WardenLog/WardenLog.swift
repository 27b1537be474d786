import Foundation
import Logging

/// How the CLI's log records look on stderr.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-12-03T06:20:00.123Z warning warden.run: message key=value ...`
    case text
    /// One JSON object per line: `time`, `level`, `label`, `message` and the metadata's keys.
    case json
}

/// Installs Warden's log handler once per process.
public enum WardenLogging {
    /// The level names `--log-level` and `WARDEN_LOG` accept.
    public static let levelNames = Logger.Level.allCases.map(\.rawValue)

    /// Bootstraps swift-log with `level` and `format`, each falling back to `WARDEN_LOG`
    /// (`LEVEL`, `FORMAT` or `LEVEL,FORMAT`, e.g. `debug,json`) and then to `defaultLevel`
    /// and text. Returns a description of the problem for a value that is neither.
    public static func bootstrap(level: String?, format: String?, defaultLevel: String = "notice",
                                 environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        var chosenLevel = Logger.Level(rawValue: defaultLevel) ?? .notice
        var chosenFormat = LogFormat.text
        for word in (environment["WARDEN_LOG"] ?? "").split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() })
        where !word.isEmpty {
            if let parsed = Logger.Level(rawValue: word) {
                chosenLevel = parsed
            } else if let parsed = LogFormat(rawValue: word) {
                chosenFormat = parsed
            } else {
                return "WARDEN_LOG: \"\(word)\" is neither a level (\(levelNames.joined(separator: ", "))) nor a format (text, json)"
            }
        }
        if let level {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                return "--log-level must be one of \(levelNames.joined(separator: ", ")), not \(level)"
            }
            chosenLevel = parsed
        }
        if let format {
            guard let parsed = LogFormat(rawValue: format.lowercased()) else { return "--log-format must be text or json, not \(format)" }
            chosenFormat = parsed
        }
        let (finalLevel, finalFormat) = (chosenLevel, chosenFormat)
        LoggingSystem.bootstrap { label in
            var handler = WardenLogHandler(label: label, format: finalFormat)
            handler.logLevel = finalLevel
            return handler
        }
        return nil
    }
}

/// Writes each record as one line to stderr in a single write, so records from concurrent
/// episodes never interleave within a line.
public struct WardenLogHandler: LogHandler {
    public let label: String
    public let format: LogFormat
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init(label: String, format: LogFormat) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        let merged = metadata.merging(explicit ?? [:]) { $1 }
        let time = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let text: String
        switch format {
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.flatten($0.value))" }
            text = ([time, level.rawValue, "\(label):", "\(message)"] + fields).joined(separator: " ")
        case .json:
            var object = merged.mapValues(Self.flatten)
            object["time"] = time
            object["level"] = level.rawValue
            object["label"] = label
            object["message"] = "\(message)"
            text = Self.json(object)
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    private static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case let .string(text): text
        case let .stringConvertible(item): item.description
        case let .array(items): "[" + items.map(flatten).joined(separator: ", ") + "]"
        case let .dictionary(items): "{" + items.sorted { $0.key < $1.key }.map { "\($0.key): \(flatten($0.value))" }.joined(separator: ", ") + "}"
        }
    }

    /// A flat string map as one line of JSON, keys sorted (no newline can appear inside).
    static func json(_ object: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(object) else {
            // Encoding a [String: String] cannot fail; say so rather than drop the record.
            return #"{"level":"error","message":"a log record could not be encoded"}"#
        }
        return String(decoding: data, as: UTF8.self)
    }
}
