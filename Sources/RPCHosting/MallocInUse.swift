#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which `malloc` the process runs on, for the servers' "listening" line.
///
/// Why a server says it: release builds link jemalloc (`release_build` in `Scripts/lib/setup.sh`
/// and the Dockerfile pass `-Xlinker -ljemalloc`, as Vapor's deployment template does; the shared
/// library, since jemalloc's static one does not link with the static Swift runtime), and a binary
/// linked without it still runs, on the C library's allocator. Benchmarks and the compose demo
/// refuse a server that does not say "jemalloc" rather than measure or ship the other build.
public enum MallocInUse: String, Sendable {
    case jemalloc
    /// The C library's own (glibc's on Linux): debug builds and `swift build` without the flag.
    case system

    /// Found at run time: jemalloc's `mallctl` is in the process when its library was linked in
    /// (or preloaded), and then it is the `malloc` every library calls too.
    public static let current: MallocInUse = {
        #if canImport(Darwin)
        let defaultHandle = UnsafeMutableRawPointer(bitPattern: -2)  // RTLD_DEFAULT
        #else
        let defaultHandle: UnsafeMutableRawPointer? = nil  // RTLD_DEFAULT
        #endif
        return dlsym(defaultHandle, "mallctl") == nil ? .system : .jemalloc
    }()
}
