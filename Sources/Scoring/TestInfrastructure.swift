import Foundation
import WardenCore

/// The file names a patch's headers give, in every form `git apply` and GNU `patch` read:
/// `diff --git` (C-quoted or not), `---`/`+++` with any prefix, `Index:`, context-diff `***`,
/// `rename`/`copy from`/`to`. Used to refuse unsafe patches before they are applied and to bound
/// what the fallbacks may change; the paths scoring restores come from the tree, not from here.
public enum PatchPaths {
    /// Names as written (unquoted, prefixes kept), and the new-side names of symlinks it creates.
    public struct Names: Sendable, Hashable {
        public var names: [String] = []
        public var newSymlinks: [String] = []
    }

    /// Files the task's own (trusted) test patch touches, prefixes stripped.
    public static func touched(by patch: String) -> [String] {
        var seen = Set<String>()
        return named(by: patch).names.compactMap { stripped($0, components: 1) }.filter { seen.insert($0).inserted }
    }

    public static func named(by patch: String) -> Names {
        var result = Names()
        var oldLeft = 0, newLeft = 0
        var currentNewName: String?
        for raw in patch.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if oldLeft > 0 || newLeft > 0 {
                // Inside a hunk: a removed "-- x" line reads "--- x" and is not a header.
                switch line.first {
                case " ": oldLeft -= 1; newLeft -= 1
                case "-": oldLeft -= 1
                case "+": newLeft -= 1
                case "\\": break
                default: oldLeft = 0; newLeft = 0  // a short hunk; read the line as a header
                }
                if oldLeft > 0 || newLeft > 0 || "+- \\".contains(line.first ?? "x") { continue }
            }
            if line.hasPrefix("@@ ") {
                let counts = hunkCounts(line)
                oldLeft = counts.0
                newLeft = counts.1
            } else if line.hasPrefix("diff --git ") {
                let pair = gitHeaderNames(String(line.dropFirst("diff --git ".count)))
                result.names += pair
                currentNewName = pair.last
            } else if let rest = dropPrefix(line, ["--- ", "+++ "]) {
                result.names += fileNames(rest)
                if line.hasPrefix("+++ ") { currentNewName = fileNames(rest).first }
            } else if let rest = dropPrefix(line, ["*** "]), !(rest.first?.isNumber ?? true), !rest.hasPrefix("*") {
                result.names += fileNames(rest)
            } else if let rest = dropPrefix(line, ["Index: ", "rename from ", "rename to ", "copy from ", "copy to "]) {
                result.names.append(unquoted(rest))
            } else if line.hasPrefix("new file mode 120000") || line.hasPrefix("new mode 120000"), let name = currentNewName {
                result.newSymlinks.append(name)
            }
        }
        result.names = result.names.filter { !$0.isEmpty && $0 != "/dev/null" }
        return result
    }

    /// The repository paths a header name can mean: as written, and with one component stripped (`-p1`).
    public static func candidates(_ name: String) -> [String] {
        [stripped(name, components: 0), stripped(name, components: 1)].compactMap { $0 }
    }

    /// The most path components a patch may name.
    static let maximumDepth = 90

    /// Why the patch may not be applied at all, or nil: a name into `.git/`, absolute, with
    /// `..`, nested past `maximumDepth`, or leading through a symlink (in the checkout, or one
    /// the patch itself creates).
    public static func refusal(for names: Names, in checkout: URL) -> String? {
        let links = Set(names.newSymlinks.flatMap(candidates))
        for name in names.names {
            if name.hasPrefix("/") { return "it names an absolute path (\(name))" }
            let components = name.split(separator: "/")
            if components.contains("..") { return "it names a path with .. (\(name))" }
            if components.contains(where: { $0.lowercased() == ".git" }) { return "it names a path inside .git/ (\(name))" }
            // libgit2 cannot scan a checkout nested 100 levels deep: grading such a patch would
            // fail, and a failed grading is an episode a trainer drops instead of scoring.
            if components.count > maximumDepth { return "it nests directories more than \(maximumDepth) levels deep (\(name.prefix(200))…)" }
            for path in candidates(name) {
                let parts = path.split(separator: "/")
                var prefix = ""
                for part in parts.dropLast() {
                    prefix += prefix.isEmpty ? String(part) : "/" + part
                    var info = stat()
                    if links.contains(prefix) || (lstat(checkout.appendingPathComponent(prefix).path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK) {
                        return "it names a path through a symlink (\(path))"
                    }
                }
            }
        }
        return nil
    }

    static func stripped(_ name: String, components: Int) -> String? {
        var parts = name.split(separator: "/").filter { $0 != "." }
        guard parts.count > components else { return nil }
        parts.removeFirst(components)
        return parts.joined(separator: "/")
    }

    private static func dropPrefix(_ line: Substring, _ prefixes: [String]) -> String? {
        prefixes.first { line.hasPrefix($0) }.map { String(line.dropFirst($0.count)) }
    }

    /// `@@ -a,b +c,d @@`: the old and new line counts (1 when omitted).
    private static func hunkCounts(_ line: Substring) -> (Int, Int) {
        let fields = line.split(separator: " ")
        func count(_ field: Substring?) -> Int {
            guard let field else { return 0 }
            let parts = field.dropFirst().split(separator: ",")
            return parts.count > 1 ? Int(parts[1]) ?? 0 : 1
        }
        return (count(fields.dropFirst().first), count(fields.dropFirst(2).first))
    }

    /// The name of a `---`/`+++`/`***` line: quoted, or up to a tab; also the first word, for
    /// the `name date` form without a tab.
    private static func fileNames(_ rest: String) -> [String] {
        if rest.hasPrefix("\"") { return [unquoted(rest)] }
        let upToTab = String(rest.prefix { $0 != "\t" })
        let firstWord = String(upToTab.prefix { $0 != " " })
        return firstWord == upToTab ? [upToTab] : [upToTab, firstWord]
    }

    /// The two names of `diff --git A B`, either of which may be C-quoted. Unquoted names with
    /// spaces are ambiguous; every reading (halves, around " b/") is returned.
    private static func gitHeaderNames(_ rest: String) -> [String] {
        if rest.hasPrefix("\"") {
            let (first, remainder) = quotedPrefix(rest)
            let second = remainder.drop { $0 == " " }
            return [first, second.hasPrefix("\"") ? unquoted(String(second)) : String(second)]
        }
        if let quote = rest.range(of: " \"") {
            return [String(rest[..<quote.lowerBound]), unquoted(String(rest[rest.index(after: quote.lowerBound)...]))]
        }
        var names: [String] = []
        let characters = Array(rest)
        if characters.count % 2 == 1, characters[characters.count / 2] == " " {
            names += [String(characters[..<(characters.count / 2)]), String(characters[(characters.count / 2 + 1)...])]
        }
        if let split = rest.range(of: " b/", options: .backwards) {
            names += [String(rest[..<split.lowerBound]), String(rest[rest.index(after: split.lowerBound)...])]
        }
        if names.isEmpty { names = rest.split(separator: " ").map(String.init) }
        return names
    }

    /// A C-quoted name (`"a/x\tb"`, octal escapes for bytes) decoded, or the text itself.
    static func unquoted(_ text: String) -> String {
        text.hasPrefix("\"") ? quotedPrefix(text).0 : text
    }

    private static func quotedPrefix(_ text: String) -> (String, Substring) {
        var bytes: [UInt8] = []
        var scalars = Array(text.utf8).dropFirst()
        while let byte = scalars.first {
            scalars = scalars.dropFirst()
            if byte == UInt8(ascii: "\"") { break }
            guard byte == UInt8(ascii: "\\"), let next = scalars.first else { bytes.append(byte); continue }
            scalars = scalars.dropFirst()
            switch next {
            case UInt8(ascii: "n"): bytes.append(10)
            case UInt8(ascii: "t"): bytes.append(9)
            case UInt8(ascii: "r"): bytes.append(13)
            case UInt8(ascii: "a"): bytes.append(7)
            case UInt8(ascii: "b"): bytes.append(8)
            case UInt8(ascii: "f"): bytes.append(12)
            case UInt8(ascii: "v"): bytes.append(11)
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = Int(next - UInt8(ascii: "0"))
                for _ in 0..<2 {
                    guard let digit = scalars.first, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(digit) else { break }
                    value = value * 8 + Int(digit - UInt8(ascii: "0"))
                    scalars = scalars.dropFirst()
                }
                bytes.append(UInt8(truncatingIfNeeded: value))
            default: bytes.append(next)
            }
        }
        let rest = String(decoding: scalars, as: UTF8.self)
        return (String(decoding: bytes, as: UTF8.self), Substring(rest))
    }
}

/// What a test runner loads besides the tests: a patch may not change it for scoring.
///
/// The rule follows what each runner Warden parses reads from the checkout. Python: `conftest.py`
/// at any depth, `pytest.ini`/`.pytest.ini`/`tox.ini` at any depth, the pytest sections of
/// `setup.cfg` and `pyproject.toml`, `sitecustomize`/`usercustomize`, `*.pth`, `*.dist-info`
/// and `*.egg-info` (entry points), and any module or package at the import root (the checkout
/// or `src/`) named like a module of the interpreter's standard library or its installed
/// packages (`pytest.py`, `_pytest/`, `unittest/`, `pluggy/`...) unless the base commit already
/// has that entry (it is then the project under test). Node: `package.json`'s test scripts and
/// module type, runner configuration files, `node_modules/`. Cargo: `Cargo.toml`, `Cargo.lock`,
/// `build.rs`, `.cargo/`, `rust-toolchain`. Go: `go.mod`, `go.work`. Swift: `Package.swift`
/// and its versioned variants, `Package.resolved`. JUnit producers: Maven and Gradle build files.
/// Every task: files under test directories, test-named files, files the test command names.
public enum TestInfrastructure {
    static let testDirectories: Set<String> = ["tests", "test", "testing", "__tests__", "Tests", "testdata", "t"]
    static let pythonFiles: Set<String> = ["conftest.py", "sitecustomize.py", "usercustomize.py", "pytest.ini", ".pytest.ini", "tox.ini", "noxfile.py"]
    static let otherFiles: Set<String> = [
        ".npmrc", ".mocharc.js", ".mocharc.cjs", ".mocharc.json", ".mocharc.yml", ".mocharc.yaml", ".taprc",
        "jest.config.js", "jest.config.cjs", "jest.config.mjs", "jest.config.ts", "vitest.config.js", "vitest.config.ts", "ava.config.js",
        "Cargo.toml", "Cargo.lock", "build.rs", "rust-toolchain", "rust-toolchain.toml",
        "go.mod", "go.work", "go.work.sum",
        "Package.swift", "Package.resolved",
        "pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts", "gradle.properties",
        ".proverc",
    ]
    static let directories: Set<String> = ["node_modules", ".cargo", "sitecustomize", "usercustomize", ".swiftpm"]

    /// Whether `path` is test infrastructure; `baseTopLevel` are the base tree's top-level
    /// entries (and `src/`'s, as `src/NAME`), `commandPaths` the words of the test command.
    public static func isInfrastructure(_ path: String, baseTopLevel: Set<String>, commandPaths: Set<String> = []) -> Bool {
        let components = path.split(separator: "/").map(String.init)
        guard let name = components.last else { return false }
        if commandPaths.contains(path) { return true }
        if pythonFiles.contains(name) || otherFiles.contains(name) || name.hasSuffix(".pth") { return true }
        if name.hasPrefix("Package@swift"), name.hasSuffix(".swift") { return true }
        if components.contains(where: { directories.contains($0) || $0.hasSuffix(".dist-info") || $0.hasSuffix(".egg-info") }) { return true }
        if components.dropLast().contains(where: { testDirectories.contains($0) }) { return true }
        let testNames = [("test_", ".py"), ("", "_test.py"), ("", "_test.go"), ("", ".test.js"), ("", ".spec.js"), ("", ".test.ts"), ("", ".spec.ts"),
                         ("", ".test.mjs"), ("", ".test.cjs")]
        if testNames.contains(where: { name.hasPrefix($0.0) && name.hasSuffix($0.1) && name.count > $0.0.count + $0.1.count - 1 }) { return true }
        return shadowsInstalledModule(components, baseTopLevel: baseTopLevel)
    }

    /// A top-level module or package (of the checkout or `src/`) that would hide one of the
    /// interpreter's: its standard library, the runner, its plugins, any installed package.
    static func shadowsInstalledModule(_ components: [String], baseTopLevel: Set<String>) -> Bool {
        let rootDepth = components.first == "src" && components.count > 1 ? 1 : 0
        let entry = components[rootDepth]
        let entryPath = components[0...rootDepth].joined(separator: "/")
        guard !baseTopLevel.contains(entryPath) else { return false }
        let isFile = components.count == rootDepth + 1
        let module: String
        if isFile {
            let extensions = [".py", ".pyc", ".pyi", ".so", ".pyd"]
            guard extensions.contains(where: { entry.hasSuffix($0) }) else { return false }
            module = String(entry.prefix { $0 != "." })
        } else {
            module = entry
        }
        return pythonModules.contains(module)
    }

    /// Every top-level module the interpreter can import without the checkout: standard library
    /// (`sys.stdlib_module_names`), built-ins, installed packages and pytest plugins. Asked once.
    static let pythonModules: Set<String> = {
        let runner: Set<String> = ["pytest", "_pytest", "py", "pluggy", "iniconfig", "unittest", "doctest", "site", "encodings", "nose", "nose2"]
        let program = """
            import sys, pkgutil, json
            names = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
            names |= {m.name for m in pkgutil.iter_modules()}
            try:
                from importlib import metadata
                names |= {ep.value.split(":")[0].split(".")[0] for ep in metadata.entry_points(group="pytest11")}
            except Exception:
                pass
            print(json.dumps(sorted(names)))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-I", "-c", program]
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0, let names = try JSONSerialization.jsonObject(with: data) as? [String] else {
                FileHandle.standardError.write(Data("warden: scoring could not list the Python interpreter's modules (exit \(process.terminationStatus)); only the runner's own names count as shadowing\n".utf8))
                return runner
            }
            return runner.union(names)
        } catch {
            FileHandle.standardError.write(Data("warden: scoring could not run python3 to list its modules (\(error)); only the runner's own names count as shadowing\n".utf8))
            return runner
        }
    }()

    /// Configuration files of which only the runner's part is infrastructure.
    public enum ConfigSections: Sendable {
        case setupCfg, pyprojectToml, packageJSON

        public init?(path: String) {
            switch path.split(separator: "/").last {
            case "setup.cfg": self = .setupCfg
            case "pyproject.toml": self = .pyprojectToml
            case "package.json": self = .packageJSON
            default: return nil
            }
        }

        /// `current` with the runner's part taken from `original`; nil when that cannot be
        /// done safely, and the whole file must go back (a changed line elsewhere names pytest,
        /// or uses a TOML escape that could spell it; package.json's test keys changed).
        public func restoringSections(of current: String, from original: String) -> String? {
            if self == .packageJSON {
                return Self.jsonTestKeys(current) == Self.jsonTestKeys(original) ? current : nil
            }
            let currentBlocks = Self.blocks(current), originalBlocks = Self.blocks(original)
            let runnerBlocks = originalBlocks.filter(isRunnerBlock)
            var result = current
            if currentBlocks.filter(isRunnerBlock) != runnerBlocks {
                var kept = currentBlocks.filter { !isRunnerBlock($0) }.joined()
                if !kept.isEmpty, !kept.hasSuffix("\n") { kept += "\n" }
                result = kept + runnerBlocks.joined()
            }
            let originalLines = Set(original.split(separator: "\n"))
            for line in result.split(separator: "\n") where !originalLines.contains(line) {
                if line.lowercased().contains("pytest") || line.contains("\\u") || line.contains("\\U") { return nil }
            }
            return result
        }

        /// `[tool:pytest]`/`[pytest]` in setup.cfg, `[tool.pytest...]` tables in pyproject.toml.
        private func isRunnerBlock(_ block: String) -> Bool {
            let header = block.prefix { $0 != "\n" }.filter { !" \t\"'".contains($0) }
            guard header.hasPrefix("[") else { return false }
            let name = header.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            switch self {
            case .setupCfg: return name == "tool:pytest" || name == "pytest"
            case .pyprojectToml: return name == "tool.pytest" || name.hasPrefix("tool.pytest.")
            case .packageJSON: return false
            }
        }

        /// The text cut before every `[section]` line; each piece keeps its newlines.
        private static func blocks(_ text: String) -> [String] {
            var blocks: [String] = []
            var current = ""
            let pieces = text.split(separator: "\n", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                let line = index == pieces.count - 1 ? String(piece) : piece + "\n"
                if line.trimmingCharacters(in: .whitespaces).hasPrefix("["), !current.isEmpty {
                    blocks.append(current)
                    current = ""
                }
                current += line
            }
            if !current.isEmpty { blocks.append(current) }
            return blocks
        }

        /// package.json's keys that decide how tests run: test scripts, module type, runner sections.
        private static func jsonTestKeys(_ text: String) -> NSDictionary? {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
            var keys: [String: Any] = [:]
            for key in ["type", "jest", "mocha", "ava", "tap", "c8", "nyc", "imports"] { keys[key] = object[key] }
            if let scripts = object["scripts"] as? [String: Any] {
                keys["scripts"] = scripts.filter { $0.key.lowercased().contains("test") }
            }
            return keys as NSDictionary
        }
    }
}

/// The contents of a checkout's `.git/` that git reads as configuration or runs (config, hooks,
/// info, refs, HEAD), to detect a patch application that wrote there. Objects, the index and
/// ORIG_HEAD are left out: `git apply --3way` and `git reset` write them legitimately.
struct GitDirectoryState: Equatable {
    var entries: [String: Data]

    init(_ checkout: URL) throws {
        let root = checkout.appendingPathComponent(".git")
        entries = [:]
        guard let walker = FileManager.default.enumerator(atPath: root.path) else {
            throw WardenError("eval.apply", "cannot read the checkout's .git", context: root.path)
        }
        while let relative = walker.nextObject() as? String {
            if ["objects", "index", "ORIG_HEAD"].contains(relative) {
                walker.skipDescendants()
                continue
            }
            let path = root.appendingPathComponent(relative).path
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFREG: entries[relative] = try Data(contentsOf: URL(fileURLWithPath: path))
            case S_IFLNK: entries[relative] = Data(((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?").utf8)
            default: entries[relative] = Data()
            }
        }
    }
}
