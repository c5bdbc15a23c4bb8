// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "Relance",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "relance", targets: ["relance"]),
        .executable(name: "relance-gateway-sim", targets: ["relance-gateway-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CSQLiteProcess",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "RelanceCore",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceTemplates",
            dependencies: [
                "RelanceCore",
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceTransport",
            dependencies: [
                "RelanceCore",
                "CCurl",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceStore",
            dependencies: [
                "RelanceCore",
                "CSQLiteProcess",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelancePostgres",
            dependencies: [
                "RelanceCore",
                "RelanceStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceConfig",
            dependencies: [
                "RelanceCore",
                "RelanceTemplates",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceSpool",
            dependencies: [
                "RelanceConfig",
                "RelanceCore",
                "RelanceStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceBounces",
            dependencies: [
                "RelanceCore",
                "RelanceSpool",
                "RelanceStore",
                "RelanceTransport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceDispatch",
            dependencies: [
                "RelanceBounces",
                "RelanceConfig",
                "RelanceCore",
                "RelanceSpool",
                "RelanceStore",
                "RelanceTemplates",
                "RelanceTransport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceHTTP",
            dependencies: [
                "RelanceBounces",
                "RelanceConfig",
                "RelanceCore",
                "RelanceSpool",
                "RelanceStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceDaemon",
            dependencies: [
                "RelanceBounces",
                "RelanceConfig",
                "RelanceCore",
                "RelanceDispatch",
                "RelanceHTTP",
                "RelancePostgres",
                "RelanceSpool",
                "RelanceStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        .executableTarget(
            name: "relance",
            dependencies: [
                "RelanceBounces",
                "RelanceConfig",
                "RelanceCore",
                "RelanceDaemon",
                "RelanceDispatch",
                "RelancePostgres",
                "RelanceSpool",
                "RelanceStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["BuildInfoPlugin"]
        ),
        .executableTarget(
            name: "relance-gateway-sim",
            dependencies: [
                "RelanceCore",
                "RelanceTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RelanceTestSupport",
            path: "Tests/RelanceTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelanceCoreTests",
            dependencies: ["RelanceCore", "RelanceTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelanceTemplatesTests",
            dependencies: ["RelanceTemplates", "RelanceTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelanceTransportTests",
            dependencies: ["RelanceTransport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelanceConfigTests",
            dependencies: ["RelanceConfig", "RelanceCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelanceHTTPTests",
            dependencies: [
                "RelanceBounces", "RelanceHTTP", "RelanceConfig", "RelanceCore", "RelanceSpool", "RelanceStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelanceBouncesTests",
            dependencies: ["RelanceBounces", "RelanceCore", "RelanceStore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelanceSpoolTests",
            dependencies: ["RelanceSpool", "RelanceCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelanceStoreTests",
            dependencies: ["RelanceStore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "RelanceTestSupport",
                "RelanceBounces", "RelanceConfig", "RelanceCore", "RelanceDaemon", "RelanceDispatch", "RelanceHTTP", "RelancePostgres", "RelanceSpool",
                "RelanceStore", "RelanceTemplates",
                "RelanceTransport", .product(name: "Crypto", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["Support"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
