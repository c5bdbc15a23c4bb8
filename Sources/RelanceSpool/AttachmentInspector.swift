import Foundation
import RelanceCore

/// The attachment checks of intake, done on the real file system.
public enum AttachmentInspector {
    public static func inspect(root: String?, maxBytes: Int) -> @Sendable (String) -> AttachmentInspection {
        { path in
            var st = stat()
            guard stat(path, &st) == 0 else { return errno == ENOENT ? .missing : .unreadable(String(cString: strerror(errno))) }
            guard (st.st_mode & S_IFMT) == S_IFREG else { return .notRegularFile }
            if let root {
                // A symbolic link must not lead outside the root.
                let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
                let realRoot = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
                guard real.hasPrefix(realRoot.hasSuffix("/") ? realRoot : realRoot + "/") else { return .outsideRoot }
            }
            guard Int(st.st_size) <= maxBytes else { return .tooLarge(Int(st.st_size)) }
            guard let handle = FileHandle(forReadingAtPath: path) else { return .unreadable("permission denied") }
            defer { try? handle.close() }
            let head = (try? handle.read(upToCount: 5)) ?? Data()
            return head == Data("%PDF-".utf8) ? .ok : .notPDF
        }
    }
}
