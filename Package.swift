// swift-tools-version: 6.0
import PackageDescription

/// Warden: a jailed harness for software-engineering agents.
///
/// One library per part; each outside library enters through one module only:
/// libseccomp -> Sandbox, libgit2 -> Workspace, AsyncHTTPClient -> Models, zlib and libcrypto -> Images,
/// ArgumentParser -> the `warden` executable, Hummingbird -> EnvironmentServer, swift-metrics and
/// swift-prometheus -> WardenMetrics. SwiftNIO appears directly only in tests and test support
/// (loopback HTTP servers for the model client and for image registries).

/// Where this manifest lives: the linker reads `scripts/warden.order` from here.
let packageDirectory = String(#filePath.dropLast("/Package.swift".count))

/// Release executables link the C++ runtime under the static Swift runtime statically too:
/// libstdc++ and libgcc_s were 0.5 ms of loading at each start. `-lstdc++` (from the Swift
/// driver) finds the linker script in scripts/static-cxx first, which names the archive. lld,
/// because it reads archives regardless of their place on the command line.
let staticCxxRuntime = ["-use-ld=lld", "-L\(packageDirectory)/scripts/static-cxx", "-Xclang-linker", "-static-libgcc"]

/// How release builds link `warden` (and the benchmarks, to measure the same): lld with packed
/// relative relocations (DT_RELR, glibc 2.36+), only `main` exported (`scripts/warden.exports`),
/// and functions in the order a solve runs them (`scripts/warden.order`, made by
/// `scripts/symbol-order`). The binary stays position-independent.
let leanReleaseLinking: [LinkerSetting] = [.unsafeFlags([
    "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
    "-Xlinker", "--version-script=\(packageDirectory)/scripts/warden.exports",
    "-Xlinker", "--symbol-ordering-file=\(packageDirectory)/scripts/warden.order", "-Xlinker", "--no-warn-symbol-ordering",
] + staticCxxRuntime, .when(configuration: .release))]

/// Debian's static archives of system libraries, linked in place of their shared objects (each
/// `lib<name>.a`). Every shared object costs the loader time at each start: libgit2 with its
/// libssh2, mbedTLS, http-parser, PCRE2 and libcrypto, and libseccomp, were 2.1 ms of the 9.1 ms
/// `warden --version` took. The -dev packages install the archives beside the shared objects.
func staticArchives(_ names: String...) -> LinkerSetting {
    .unsafeFlags(names.flatMap { ["-Xlinker", "-l:lib\($0).a"] })
}

/// libgit2's references to the functions Sources/CGitOffline replaces are redirected there:
/// mbedTLS's loading of CA certificates, and GSS-API (Kerberos), which is then not linked at all.
let offlineLibgit2: LinkerSetting = .unsafeFlags([
    "mbedtls_x509_crt_parse_file", "mbedtls_x509_crt_parse_path",
    "gss_indicate_mechs", "gss_display_status", "gss_import_name", "gss_init_sec_context",
    "gss_delete_sec_context", "gss_release_buffer", "gss_release_name", "gss_release_oid_set",
    "GSS_C_NT_HOSTBASED_SERVICE",
].flatMap { ["-Xlinker", "--wrap=\($0)"] })

/// What the loopback HTTP servers of the tests are built from.
let loopbackHTTPServer: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
]

let package = Package(
    name: "Warden",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "warden", targets: ["warden"]),
        .executable(name: "warden-jail", targets: ["warden-jail"]),
        .library(name: "WardenCore", targets: ["WardenCore"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
        .library(name: "Workspace", targets: ["Workspace"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Agent", targets: ["Agent"]),
        .library(name: "Scoring", targets: ["Scoring"]),
        .library(name: "Images", targets: ["Images"]),
        .library(name: "Environments", targets: ["Environments"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // Value types and protocols shared by every part. No I/O.
        .target(name: "WardenCore"),

        // System libraries, each wrapped by exactly one Swift module.
        // Their module maps link nothing: `staticArchives` links them.
        .systemLibrary(name: "CSeccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CGit2", providers: [.apt(["libgit2-dev"])]),
        // gzip layers (zlib) and SHA-256 digests (libcrypto) for container images.
        .systemLibrary(name: "CImageCodecs", providers: [.apt(["zlib1g-dev", "libssl-dev"])]),
        // The few Linux calls Swift cannot import (clone flags, pivot_root, capsets, seccomp load).
        .target(name: "CJail"),

        // The jail: profiles, the helper protocol, the persistent shell, seccomp policy.
        .target(name: "Sandbox", dependencies: ["WardenCore", "CSeccomp", "CJail"], linkerSettings: [staticArchives("seccomp")]),
        // Workspace state through libgit2: snapshots, diffs, apply, restore, materialize.
        // libgit2 with its network unplugged: no CA certificates parsed at start-up, no Kerberos.
        .target(name: "CGitOffline"),
        .target(name: "Workspace", dependencies: ["WardenCore", "CGit2", "CGitOffline", .product(name: "Logging", package: "swift-log")], linkerSettings: [
            staticArchives("git2", "ssh2", "mbedtls", "mbedx509", "mbedcrypto", "http_parser", "pcre2-8", "crypto"), .linkedLibrary("z"), offlineLibgit2,
        ]),

        // Task environments (a venv, requirements, commands) built once with the set-up profile
        // and shared read-only by the task's jails.
        .target(name: "Environments", dependencies: ["WardenCore", "Sandbox", "Workspace", .product(name: "Logging", package: "swift-log")]),

        // Model clients: OpenAI-compatible HTTP (the only user of AsyncHTTPClient), replay, human.
        .target(
            name: "Models",
            dependencies: ["WardenCore", .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        // Container images daemonless: OCI layouts, docker save archives and registries (HTTP
        // through Models' HTTPFetcher), unpacked safely into a shared content-addressed store.
        .target(
            name: "Images",
            dependencies: ["WardenCore", "Sandbox", "Models", "CImageCodecs", "CJail", .product(name: "Logging", package: "swift-log")],
            linkerSettings: [staticArchives("crypto")]
        ),
        // Images the tests and benchmarks build from host binaries, hand-written tar archives, and
        // a registry on loopback (SwiftNIO).
        .target(
            name: "ImagesTesting",
            dependencies: ["Images", "Workspace"] + loopbackHTTPServer
        ),
        // The agent loop, action protocols, tools and trajectories.
        .target(
            name: "Agent",
            dependencies: ["WardenCore", "Sandbox", "Workspace", "Scoring", "Environments", .product(name: "Logging", package: "swift-log")],
            resources: [.copy("Templates")]
        ),
        // The CLI's log handler (text or JSON lines on stderr) and its bootstrap.
        .target(name: "WardenLog", dependencies: [.product(name: "Logging", package: "swift-log")]),

        // Scoring by the repository's tests: log parsers, SWE-bench grading, the evaluation pipeline.
        .target(name: "Scoring", dependencies: ["WardenCore", "Sandbox", "Workspace", "Environments", .product(name: "Logging", package: "swift-log")]),
        // Task sources: suite directories and SWE-bench JSONL/JSON files.
        .target(name: "Tasks", dependencies: ["WardenCore", "Workspace"], path: "Sources/TaskSources"),

        // Execution traces in CWM's format: the Python tracer it ships runs inside the jail.
        .target(name: "Traces", dependencies: ["WardenCore", "Sandbox", "Workspace", "Tasks", .product(name: "Logging", package: "swift-log")], resources: [.copy("Resources")]),

        // Batch runs: attempts, results, resume, shards, merge, pass@k, SFT export.
        .target(
            name: "Runs",
            dependencies: ["WardenCore", "Agent", "Scoring", "Tasks", "Sandbox", "Workspace", "Images", .product(name: "Logging", package: "swift-log")]
        ),

        // `warden synth`: tasks made by mutating a repository whose tests pass (SWE-smith style),
        // validated by the repository's own tests in the jail. The Python mutator it ships runs there.
        .target(
            name: "Synth",
            dependencies: ["WardenCore", "Sandbox", "Workspace", "Scoring", "Tasks", "Runs", .product(name: "Logging", package: "swift-log")],
            resources: [.copy("Resources")]
        ),

        // The HTML report of run directories and the trajectory viewer: static, self-contained pages.
        .target(
            name: "Report",
            dependencies: ["WardenCore", "Agent", "Scoring", "Runs", .product(name: "Logging", package: "swift-log")]
        ),

        // Live Prometheus metrics of episodes (an EpisodeObserver) and their loopback endpoint.
        // The only user of swift-metrics and swift-prometheus.
        .target(
            name: "WardenMetrics",
            dependencies: [
                "WardenCore", "Agent",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        // `warden serve`: OpenEnv-compatible reset/step over HTTP and WebSocket, and whole rollouts
        // against a trainer's OpenAI-compatible server. The only user of Hummingbird.
        .target(
            name: "EnvironmentServer",
            dependencies: [
                "WardenCore", "Agent", "Models", "Scoring", "Tasks", "Sandbox",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The single-threaded helper that builds a jail and execs bash. No Foundation, no threads.
        // Release builds link a static Swift runtime: the helper starts for every jail and
        // loading libswiftCore.so costs milliseconds. (Debug keeps it dynamic: the flag would
        // leak into the test bundles that depend on the helper.)
        .executableTarget(
            name: "warden-jail",
            dependencies: ["CJail"],
            linkerSettings: [.unsafeFlags(["-static-stdlib"] + staticCxxRuntime, .when(configuration: .release))]
        ),
        // The thin command line over the libraries.
        // Release builds link lean (`leanReleaseLinking`): one solve peaks at 28 MB instead of
        // 44.5 MB with the default linker (see the README's footprint row).
        .executableTarget(
            name: "warden",
            dependencies: [
                "WardenCore", "Sandbox", "Workspace", "Models", "Agent", "Scoring", "Tasks", "Runs", "EnvironmentServer", "WardenLog", "Traces", "Synth", "Report", "WardenMetrics", "Images",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: leanReleaseLinking,
            plugins: ["BuildInfo"]
        ),
        // Writes the git commit into the `warden` executable before each build (`--version`).
        .plugin(name: "BuildInfo", capability: .buildTool()),

        // Benchmarks print medians and ratios to baselines measured in the same run.
        .executableTarget(
            name: "warden-bench",
            dependencies: [
                "WardenCore", "Sandbox", "Workspace", "Agent", "Models", "Scoring", "Tasks", "EnvironmentServer", "Traces", "Synth", "Runs", "Report", "Images", "ImagesTesting",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/warden-bench",
            // Linked as `warden` is, so its memory and throughput figures are the shipped binary's.
            linkerSettings: leanReleaseLinking
        ),

        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "Workspace", "warden-jail"]),
        .testTarget(name: "WorkspaceTests", dependencies: ["Workspace"]),
        .testTarget(name: "EnvironmentsTests", dependencies: ["Environments", "Agent", "Scoring", "Tasks", "Sandbox", "Workspace", "WardenCore", "warden-jail"]),
        // Images the tests build themselves, and a registry on loopback.
        .testTarget(name: "ImagesTests", dependencies: ["Images", "ImagesTesting", "Sandbox", "Agent", "Scoring", "Workspace", "Tasks", "Runs", "warden-jail"]),
        .testTarget(
            name: "ModelsTests",
            dependencies: ["Models"] + loopbackHTTPServer
        ),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "Models", "Sandbox", "Workspace", "Scoring", "Tasks", "warden-jail"]),
        .testTarget(name: "ScoringTests", dependencies: ["Scoring", "Tasks", "Sandbox", "Workspace", "warden-jail"], resources: [.copy("Golden")]),
        .testTarget(name: "RunsTests", dependencies: ["Runs", "Agent", "WardenCore", "Scoring", "Tasks", "Sandbox", "Workspace", "warden-jail"]),
        .testTarget(name: "TracesTests", dependencies: ["Traces", "Tasks", "Sandbox", "WardenCore", "warden-jail"], resources: [.copy("Golden")]),
        .testTarget(name: "SynthTests", dependencies: ["Synth", "Tasks", "Sandbox", "Workspace", "WardenCore", "warden-jail"]),
        .testTarget(name: "WardenCLITests", dependencies: ["warden", "warden-jail", "ImagesTesting"]),
        // A real WebSocket client (Hummingbird's) drives the server over loopback.
        .testTarget(
            name: "EnvironmentServerTests",
            dependencies: [
                "EnvironmentServer", "Agent", "Tasks", "WardenCore", "warden-jail",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            // Run by the test with the venv's Python (OpenEnv's client).
            exclude: ["openenv_client.py"]
        ),
    ]
)
