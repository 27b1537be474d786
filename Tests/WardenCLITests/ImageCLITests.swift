import Foundation
import ImagesTesting
import Testing

/// `warden tasks validate`, `run`, `eval` and `solve` on a suite whose task names its image: the
/// default profiles switch to their image variants, the image is unpacked once into the store
/// `WARDEN_IMAGES` names, and every jail (agent and scoring) runs in it.
@Suite("warden on an image-backed suite")
struct ImageCLITests {
    @Test("validate, run, eval and solve work on an image-backed suite", .timeLimit(.minutes(4)))
    func imageSuite() throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("warden-cli-image-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: directory) }
        let suite = try GreetTask.writeSuite(in: directory, image: try GreetTask.writeImage(in: directory))
        let store = directory.appendingPathComponent("store")
        let environment = ["WARDEN_IMAGES": store.path]

        let validated = try CLITests.warden(["tasks", "validate", suite.path, "--runs", "1"], environment: environment)
        #expect(validated.status == 0, "\(validated.stdout)\(validated.stderr)")
        #expect(validated.stdout.contains("1 of 1 tasks valid"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.appendingPathComponent("images").path).count == 1,
                "one unpacked copy of the image")

        let run = directory.appendingPathComponent("run")
        let ran = try CLITests.warden(["run", suite.path, "--model", "oracle", "--out", run.path], environment: environment)
        #expect(ran.status == 0, "\(ran.stdout)\(ran.stderr)")
        let results = try String(contentsOf: run.appendingPathComponent("results.jsonl"), encoding: .utf8)
        #expect(results.contains("\"resolved\":true"), "\(results)")

        let evaluated = try CLITests.warden(["eval", suite.path, "--predictions", "empty", "--out", directory.appendingPathComponent("eval").path],
                                            environment: environment)
        let report = try String(contentsOf: directory.appendingPathComponent("eval/\(GreetTask.instanceID)/report.json"), encoding: .utf8)
        #expect(report.contains("\"resolved\" : false"), "\(report) \(evaluated.stderr)")
        let log = try String(contentsOf: directory.appendingPathComponent("eval/\(GreetTask.instanceID)/test_output.txt"), encoding: .utf8)
        #expect(log.contains("not ok 2 - says hi") || log.contains("not ok 1 - says hi"), "the hidden tests ran in the image: \(log)")

        let solved = try CLITests.warden(["solve", suite.appendingPathComponent(GreetTask.instanceID).path, "--model", "oracle",
                                          "--out", directory.appendingPathComponent("solve").path, "--quiet"], environment: environment)
        #expect(solved.status == 0, "\(solved.stderr)")
        #expect(solved.stdout.contains("+greet() { echo \"Hi $1\"; }"))
        let trajectory = try String(contentsOf: directory.appendingPathComponent("solve/trajectory.jsonl"), encoding: .utf8)
        #expect(trajectory.contains("\"checkout\":\"\\/testbed\"") || trajectory.contains("\"checkout\":\"/testbed\""))
    }
}
