import Foundation
import Testing

/// A scrape over a real TCP connection to 127.0.0.1, as Prometheus makes it.
enum Scrape {
    /// The response (status line, headers and body), or nil when nothing listens.
    static func get(port: Int, path: String = "/metrics", method: String = "GET", body: String = "") -> String? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array(("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body).utf8)
        guard request.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == request.count else { return nil }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            response += buffer[0..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }

    /// A port nothing listens on now.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        try #require(bound)
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The value of a sample line `name VALUE` (labels included in `name`).
    static func value(_ body: String, _ name: String) -> Double? {
        body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.dropFirst(name.count + 1)) }
    }
}

@Suite("warden run --metrics-port")
struct MetricsCLITests {
    @Test("scrapes during a run show episodes starting and finishing, step latency by part, jail start time and the queue")
    func countersMoveDuringRun() throws {
        let out = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-metrics-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let port = try Scrape.freePort()
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["run", "Tasks/starter", "--filter", "jsonptr-1|strutil|wrapkit", "--model", "oracle", "--workers", "1",
                             "--metrics-port", "\(port)", "--out", out.path]
        process.currentDirectoryURL = CLITests.root
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var scrapes: [String] = []
        while process.isRunning {
            if let response = Scrape.get(port: port) { scrapes.append(response) }
            usleep(100_000)
        }
        #expect(process.terminationStatus == 0)
        let bodies = scrapes.filter { $0.hasPrefix("HTTP/1.1 200 OK") }
        try #require(bodies.count >= 2, "\(scrapes.count) scrapes")
        let started = bodies.map { Scrape.value($0, "warden_episodes_started_total") ?? 0 }
        let finished = bodies.map { Scrape.value($0, "warden_episodes_finished_total{status=\"submitted\"}") ?? 0 }
        // Seen moving: a scrape with fewer episodes than a later one, each counter never going back.
        #expect(started.first ?? 3 < 3 && started.last == 3, "\(started)")
        #expect(finished.first ?? 3 < 3 && finished.contains { $0 >= 1 }, "\(finished)")
        #expect(zip(started, started.dropFirst()).allSatisfy { $0 <= $1 })
        let last = try #require(bodies.last)
        for part in ["model", "command", "harness"] {
            #expect((Scrape.value(last, "warden_step_seconds_count{part=\"\(part)\"}") ?? 0) >= 3, "\(part)")
        }
        #expect((Scrape.value(last, "warden_jail_start_seconds_count") ?? 0) >= 2)
        #expect(Scrape.value(last, "warden_queue_depth") != nil)
        #expect(bodies.compactMap { Scrape.value($0, "warden_queue_depth") }.contains { $0 >= 1 })
        #expect(Scrape.value(last, "warden_resolved_rate") == 1)
    }

    @Test("warden serve --metrics-port counts an episode reset over HTTP and its jail start; other paths are 404")
    func serveCountsEpisodes() throws {
        let out = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-metrics-serve-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let (serverPort, metricsPort) = (try Scrape.freePort(), try Scrape.freePort())
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["serve", "Tasks/starter", "--insecure-local", "--port", "\(serverPort)", "--metrics-port", "\(metricsPort)",
                             "--out", out.path]
        process.currentDirectoryURL = CLITests.root
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        var before: String?
        for _ in 0..<300 where before == nil && process.isRunning {
            before = Scrape.get(port: metricsPort)
            if before == nil { usleep(50_000) }
        }
        let idle = try #require(before)
        #expect(Scrape.value(idle, "warden_episodes_started_total") == 0)
        #expect(Scrape.get(port: metricsPort, path: "/")?.hasPrefix("HTTP/1.1 404") == true)
        var reset: String?
        for _ in 0..<300 where reset?.hasPrefix("HTTP/1.1 200") != true {
            reset = Scrape.get(port: serverPort, path: "/reset", method: "POST", body: "{\"task_id\": \"warden__strutil-1\"}")
            if reset?.hasPrefix("HTTP/1.1 200") != true { usleep(50_000) }
        }
        #expect(reset?.hasPrefix("HTTP/1.1 200") == true, "\(reset ?? "no answer")")
        let after = try #require(Scrape.get(port: metricsPort))
        #expect(Scrape.value(after, "warden_episodes_started_total") == 1)
        #expect(Scrape.value(after, "warden_jail_start_seconds_count") == 1)
    }
}
