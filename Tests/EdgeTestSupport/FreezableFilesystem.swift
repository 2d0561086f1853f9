import Foundation
import Testing

/// An ext4 filesystem in a file, loop-mounted for one test, that the test can freeze (`fsfreeze`): every
/// write and fsync into it blocks until it is thawed, as on a hung disk or a stuck SD card. Needs root and
/// loop devices; where the box does not allow them, the test is cancelled with the reason.
public final class FreezableFilesystem: @unchecked Sendable {
    public let dir = TempDir("edged-hungdisk")
    public let mountPoint: String
    private let lock = NSLock()
    private var mounted = false
    private var frozen = false

    private init() { mountPoint = dir.file("mnt") }

    public func file(_ name: String) -> String { mountPoint + "/" + name }

    static func tool(_ name: String) -> String? {
        ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].map { $0 + name }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Makes and mounts one, or cancels the calling test.
    public static func make() async throws -> FreezableFilesystem {
        guard getuid() == 0 else { try Test.cancel("mounting a loop device needs root") }
        guard let mkfs = tool("mkfs.ext4"), let mount = tool("mount"), tool("fsfreeze") != nil, tool("umount") != nil
        else {
            try Test.cancel("needs mkfs.ext4 (e2fsprogs), mount and fsfreeze (util-linux)")
        }
        let fs = FreezableFilesystem()
        let image = fs.dir.file("disk.img")
        try FileManager.default.createDirectory(atPath: fs.mountPoint, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: image, contents: nil), truncate(image, 64 << 20) == 0 else {
            throw TestSetupError("cannot make \(image)")
        }
        let made = try await runTool(mkfs, ["-q", "-F", image])
        guard made.status == 0 else { try Test.cancel("mkfs.ext4 failed here: \(made.output)") }
        let mounted = try await runTool(mount, ["-o", "loop", image, fs.mountPoint])
        guard mounted.status == 0 else { try Test.cancel("this box does not allow loop mounts: \(mounted.output)") }
        fs.lock.withLock { fs.mounted = true }
        return fs
    }

    public func freeze() async throws {
        let r = try await runTool(Self.tool("fsfreeze")!, ["--freeze", mountPoint])
        guard r.status == 0 else { throw TestSetupError("fsfreeze --freeze: \(r.output)") }
        lock.withLock { frozen = true }
    }

    /// Synchronous, so it can run in a `defer`: a test that fails while frozen must not leave the disk hung.
    public func thaw() {
        guard lock.withLock({ frozen }) else { return }
        _ = try? runTool(Self.tool("fsfreeze")!, ["--unfreeze", mountPoint], timeout: 10)
        lock.withLock { frozen = false }
    }

    deinit {
        thaw()
        // Lazy: a process that still holds a file there cannot keep the mount (and its loop device) alive.
        if mounted { _ = try? runTool(Self.tool("umount")!, ["--lazy", mountPoint], timeout: 10) }
    }
}
