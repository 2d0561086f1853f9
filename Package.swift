// swift-tools-version:6.1
// edged — the WellPulse edge gateway daemon.
// Arrows point one way: executables → I/O modules (ModbusPoller, SerialIO, EdgeBuffer, Uplink) → EdgeCore.
// Linux only (libmodbus, libsystemd, RS-485 ioctls, fsfreeze in the tests): no `platforms` entry, as
// SwiftPM has none for Linux; each target lists exactly the modules its files import.
import PackageDescription

let package = Package(
    name: "edged",
    products: [
        .executable(name: "edged", targets: ["edged"]),
        .executable(name: "edgectl", targets: ["edgectl"]),
        .executable(name: "edgesim", targets: ["edgesim"]),
        .library(name: "EdgeCore", targets: ["EdgeCore"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2")
    ],
    targets: [
        // System libraries from Debian, found through pkg-config.
        .systemLibrary(name: "CModbus", pkgConfig: "libmodbus", providers: [.apt(["libmodbus-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Typed wrappers for libcurl's variadic functions (curl_easy_setopt, curl_easy_getinfo).
        .target(name: "CEdgeShim", dependencies: ["CCurl"]),
        // The OS calls Swift cannot make directly (TIOCSRS485, SO_PEERCRED, ntp_adjtime, mallopt); libc only.
        .target(name: "CEdgeSystem"),
        // edged's malloc arena cap, set before main (a constructor), so no thread allocates before it.
        .target(name: "CEdgedStart"),

        // What touches the OS, beneath everything else: system calls with errno as a typed error, the Unix and
        // TCP sockets, the clocks (monotonic for waits, wall for timestamps) and clock sync status, monotonic
        // condition variables, a blocking worker with an async face, RS-485 direction control, the C heap.
        .target(name: "EdgeSystem", dependencies: ["CEdgeSystem"]),

        // Pure logic: value types, config model and validation, decoding, planning, alarm logic. No I/O.
        .target(name: "EdgeCore", dependencies: [.product(name: "Yams", package: "Yams")]),

        // I/O shells around the core.
        // Process-level OS plumbing shared by edged and edgectl: config files on disk, systemd notify,
        // journald, the control socket.
        .target(
            name: "EdgeRuntime",
            dependencies: [
                "EdgeCore", "EdgeSystem", "CSystemd",
                .product(name: "Logging", package: "swift-log")
            ]),
        .target(name: "SerialIO", dependencies: ["EdgeCore", "EdgeSystem"]),
        .target(
            name: "ModbusPoller",
            dependencies: [
                "EdgeCore", "EdgeSystem", "SerialIO", "CModbus",
                .product(name: "Logging", package: "swift-log")
            ]),
        .target(
            name: "EdgeBuffer",
            dependencies: [
                "EdgeCore", "EdgeSystem", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log")
            ]),
        .target(
            name: "Uplink",
            dependencies: [
                "EdgeCore", "EdgeSystem", "EdgeBuffer", "EdgeRuntime", "CCurl", "CEdgeShim", "CZlib",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log")
            ]),

        // The control socket's protocol: commands, replies and error codes, shared by edged and edgectl.
        .target(name: "EdgeControl", dependencies: ["EdgeCore", "EdgeRuntime", "ModbusPoller", "Uplink"]),

        // The device simulator: serves templates over TCP and serial ports, with faults on demand.
        .target(name: "EdgeSim", dependencies: ["EdgeCore", "EdgeSystem", "CModbus"]),

        // The daemon (EdgedCommand, the Gateway actor and its services) and edgectl's command tree, as
        // libraries, so that one binary can be both (see `edged`).
        .target(
            name: "EdgedDaemon",
            dependencies: [
                "EdgeCore", "EdgeRuntime", "EdgeSystem", "EdgeControl", "ModbusPoller", "EdgeBuffer", "Uplink",
                "CEdgedStart",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle")
            ]),
        .target(
            name: "EdgeCtlCommands",
            dependencies: [
                "EdgeCore", "EdgeRuntime", "EdgeSystem", "EdgeControl", "ModbusPoller", "Uplink",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams")
            ]),

        // Executables only wire things together. edged is also edgectl when invoked under that name: the
        // package ships one binary and a link (the Swift runtime, Foundation and ICU once, not twice); the
        // edgectl executable is the same commands on their own, for development and the tests.
        .executableTarget(name: "edged", dependencies: ["EdgedDaemon", "EdgeCtlCommands"]),
        .executableTarget(name: "edgectl", dependencies: ["EdgeCtlCommands"]),

        .executableTarget(
            name: "edgesim",
            dependencies: [
                "EdgeCore", "EdgeRuntime", "EdgeSim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams")
            ]),

        .target(name: "CBenchRaw", dependencies: ["CModbus"]),
        // The floor under edged's memory: the same system libraries, used from C (`edgebench daemon`).
        .executableTarget(
            name: "edgebench-floor", dependencies: ["CModbus", "CCurl", "CSystemd", "CZlib"],
            linkerSettings: [.linkedLibrary("sqlite3"), .linkedLibrary("stdc++")]),
        // Benchmarks: each figure printed beside a reference measured in the same run (`make bench`).
        .executableTarget(
            name: "edgebench",
            dependencies: [
                "EdgeCore", "EdgeSim", "EdgeSystem", "ModbusPoller", "EdgeBuffer", "CBenchRaw",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log")
            ]),
        // Fuzz targets for the parsers of untrusted bytes: replays inputs, or runs libFuzzer when built by
        // scripts/fuzz.sh (`make fuzz`).
        .executableTarget(name: "edgefuzz", dependencies: ["EdgeCore", "EdgeRuntime", "EdgeControl"]),
        // Test tool: writes readings into a buffer and logs each seq it was told is stored (the kill test).
        .executableTarget(name: "edgebuf-writer", dependencies: ["EdgeCore", "EdgeBuffer"]),

        .target(name: "EdgeTestSupport", dependencies: ["EdgeCore"], path: "Tests/EdgeTestSupport"),
        .testTarget(name: "EdgeCoreTests", dependencies: ["EdgeCore", "EdgeRuntime", "EdgeSystem", "EdgeTestSupport"]),
        .testTarget(
            name: "BufferTests",
            dependencies: [
                "EdgeCore", "EdgeBuffer", "EdgeSystem", "EdgeTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log")
            ]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "EdgeCore", "EdgeRuntime", "EdgeSystem", "EdgeControl", "EdgeTestSupport", "EdgeSim", "ModbusPoller",
                "EdgeBuffer", "Uplink", "CModbus",
                .product(name: "Logging", package: "swift-log")
            ])
    ],
    swiftLanguageModes: [.v6]
)
