import Foundation

/// glibc's `malloc_trim`: hands free heap memory of every malloc arena back to the system. Files
/// parsed on several threads leave free memory in as many arenas, and a large backlog would keep
/// that high-water mark for the life of the process. Looked up at run time (glibc's `<malloc.h>`
/// is not in Swift's Glibc module); a no-op where it does not exist.
enum MemoryTrim {
    private typealias Trim = @convention(c) (Int) -> Int32

    private static let trim: Trim? = {
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: Trim.self)
    }()

    static func run() { _ = trim?(0) }
}
