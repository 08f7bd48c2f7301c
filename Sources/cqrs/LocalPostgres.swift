import ArgumentParser
import Foundation

/// The PostgreSQL cluster of `cqrs dev --postgres`: Debian's server binaries, a cluster in the
/// dev data directory (made with `initdb` on first use, kept across runs like the other
/// services' data), listening on loopback, started before the services and stopped after them.
/// As root it runs as the `postgres` user, since PostgreSQL refuses to run as root.
struct LocalPostgres {
    let directory: String
    let host: String
    let port: Int
    let logs: String

    var url: String { "postgres://postgres@\(host):\(port)/postgres" }
    /// The server's own log, in the cluster's directory (the server runs as its owner).
    var serverLog: String { directory + "/server.log" }

    /// Where `initdb` and `pg_ctl` are: Debian's versioned directory, newest first.
    static func binaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted { Int($0) ?? 0 > Int($1) ?? 0 }
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw ValidationError("--postgres needs PostgreSQL's server binaries (Debian: apt-get install postgresql)")
    }

    /// Makes the cluster if it is new, and starts it; returns its URL.
    func start() throws -> String {
        let bin = try Self.binaries()
        let data = directory + "/data"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try run(["chown", "-R", "postgres:", directory], asOwner: false) }
        if !FileManager.default.fileExists(atPath: data + "/PG_VERSION") {
            try run([bin + "/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"], asOwner: true)
        }
        try run(
            [
                bin + "/pg_ctl", "-D", data, "-l", serverLog, "-w", "-t", "60", "start", "-o",
                "-p \(port) -k \(directory) -c listen_addresses=\(host)",
            ], asOwner: true)
        return url
    }

    func stop() {
        guard let bin = try? Self.binaries() else { return }
        try? run([bin + "/pg_ctl", "-D", directory + "/data", "-m", "fast", "-w", "stop"], asOwner: true)
        FileHandle.standardError.write(Data("postgres stopped\n".utf8))
    }

    /// Runs a command to its end, its output appended to the setup log. posix_spawn and waitpid
    /// rather than Foundation's `Process`, whose wait did not see these children end here.
    private func run(_ command: [String], asOwner: Bool) throws {
        let argv = asOwner && getuid() == 0 ? ["runuser", "-u", "postgres", "--"] + command : command
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let setupLog = logs + "/postgres-setup.log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, setupLog, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var arguments = argv.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, argv[0], &actions, nil, &arguments, environ)
        guard spawned == 0 else { throw ValidationError("cannot run \(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else {
            let tool = command.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
            throw ValidationError("\(tool) failed: see \(setupLog) and \(serverLog)")
        }
    }
}
