import CBCCLoader

/// libbcc's functions, from the library opened at the first compile rather than linked
/// (`CBCCLoader.c` says why: a tool can block its signals sooner, and a program that links the
/// runtime starts, and reports what is missing, on a machine without BCC).
enum LibBCC {
    /// Opens libbcc, once per process; later calls return at once.
    ///
    /// - Throws: `BPFError.libraryMissing` naming the package to install.
    static func open() throws(BPFError) {
        var reason = [CChar](repeating: 0, count: 512)
        guard CBCCLoader_open(&reason, reason.count) != nil else {
            throw .libraryMissing(name: "libbcc.so.0", reason: String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }

    /// The functions. Every BCC object (module, table, link, perf reader) is made from a module,
    /// which opened the library first, so only code reached from one calls this.
    static var functions: CBCCFunctions {
        guard let table = CBCCLoader_opened() else { preconditionFailure("libbcc called before LibBCC.open()") }
        return table.pointee
    }
}
