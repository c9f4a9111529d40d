/// A resource record type (RFC 1035 `TYPE`/`QTYPE`), named as `dig` prints it.
///
/// Any 16-bit value is a type: the ones without a mnemonic print as `TYPE<n>` (RFC 3597).
public struct DNSRecordType: DNSNumberName {
    /// The type's number on the wire.
    public var rawValue: UInt16

    /// The type numbered `rawValue`.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `TYPE`: a type without a mnemonic prints as `TYPE<n>`.
    public static let genericPrefix = "TYPE"

    /// IPv4 address (RFC 1035).
    public static let a = Self(rawValue: 1)
    /// Authoritative name server (RFC 1035).
    public static let ns = Self(rawValue: 2)
    /// Canonical name (RFC 1035).
    public static let cname = Self(rawValue: 5)
    /// Start of a zone of authority (RFC 1035).
    public static let soa = Self(rawValue: 6)
    /// Domain name pointer, for reverse lookups (RFC 1035).
    public static let ptr = Self(rawValue: 12)
    /// Host information (RFC 1035, RFC 8482).
    public static let hinfo = Self(rawValue: 13)
    /// Mail exchange (RFC 1035).
    public static let mx = Self(rawValue: 15)
    /// Text strings (RFC 1035).
    public static let txt = Self(rawValue: 16)
    /// IPv6 address (RFC 3596).
    public static let aaaa = Self(rawValue: 28)
    /// Service location (RFC 2782).
    public static let srv = Self(rawValue: 33)
    /// Naming authority pointer (RFC 3403).
    public static let naptr = Self(rawValue: 35)
    /// Redirection of a subtree (RFC 6672).
    public static let dname = Self(rawValue: 39)
    /// The EDNS pseudo-record of the additional section (RFC 6891).
    public static let opt = Self(rawValue: 41)
    /// Delegation signer (RFC 4034).
    public static let ds = Self(rawValue: 43)
    /// Signature over a record set (RFC 4034).
    public static let rrsig = Self(rawValue: 46)
    /// Next secure record, authenticated denial (RFC 4034).
    public static let nsec = Self(rawValue: 47)
    /// A zone's public key (RFC 4034).
    public static let dnskey = Self(rawValue: 48)
    /// Hashed next secure record (RFC 5155).
    public static let nsec3 = Self(rawValue: 50)
    /// TLS certificate association (RFC 6698).
    public static let tlsa = Self(rawValue: 52)
    /// Service binding (RFC 9460).
    public static let svcb = Self(rawValue: 64)
    /// Service binding for HTTPS (RFC 9460).
    public static let https = Self(rawValue: 65)
    /// Zone transfer (RFC 5936), a question type only.
    public static let axfr = Self(rawValue: 252)
    /// Every record of the name (RFC 1035 `*`, RFC 8482), a question type only.
    public static let any = Self(rawValue: 255)
    /// Certification authority authorization (RFC 8659).
    public static let caa = Self(rawValue: 257)

    /// The mnemonics of the IANA registry that `dig` knows; the others print as `TYPE<n>`.
    public static let mnemonics: [UInt16: String] = [
        1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR", 10: "NULL",
        11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB", 19: "X25",
        20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAP-PTR", 24: "SIG", 25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA",
        29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC", 33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT",
        38: "A6", 39: "DNAME", 40: "SINK", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY",
        46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA",
        53: "SMIMEA", 55: "HIP", 56: "NINFO", 57: "RKEY", 58: "TALINK", 59: "CDS", 60: "CDNSKEY",
        61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF", 100: "UINFO",
        101: "UID", 102: "GID", 103: "UNSPEC", 104: "NID", 105: "L32", 106: "L64", 107: "LP", 108: "EUI48",
        109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB", 254: "MAILA", 255: "ANY",
        256: "URI", 257: "CAA", 258: "AVC", 259: "DOA", 260: "AMTRELAY", 261: "RESINFO", 32768: "TA", 32769: "DLV",
    ]
}

/// A response code: the header's 4 bits, extended to 12 by an EDNS OPT record (RFC 6891),
/// named as `dig` prints it.
public struct DNSResponseCode: DNSNumberName {
    /// The code's number: the header's `RCODE`, plus the OPT record's upper 8 bits shifted left by 4.
    public var rawValue: UInt16
    /// `RCODE`: a code without a mnemonic prints as `RCODE<n>`.
    public static let genericPrefix = "RCODE"
    /// The mnemonics `dig` prints.
    public static let mnemonics: [UInt16: String] = [
        0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 6: "YXDOMAIN",
        7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 16: "BADVERS", 23: "BADCOOKIE",
    ]

    /// The code numbered `rawValue`.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
}

extension DNSResponseCode {
    /// No error (`NOERROR`).
    public static let noError = Self(rawValue: 0)
    /// The server could not interpret the query (`FORMERR`).
    public static let formatError = Self(rawValue: 1)
    /// The server failed to answer (`SERVFAIL`).
    public static let serverFailure = Self(rawValue: 2)
    /// The name does not exist (`NXDOMAIN`).
    public static let nameError = Self(rawValue: 3)
    /// The server does not support the kind of query (`NOTIMP`).
    public static let notImplemented = Self(rawValue: 4)
    /// The server refused for policy reasons (`REFUSED`).
    public static let refused = Self(rawValue: 5)
    /// A name exists that should not (`YXDOMAIN`, RFC 2136).
    public static let yxDomain = Self(rawValue: 6)
    /// A record set exists that should not (`YXRRSET`, RFC 2136).
    public static let yxRRSet = Self(rawValue: 7)
    /// A record set that should exist does not (`NXRRSET`, RFC 2136).
    public static let nxRRSet = Self(rawValue: 8)
    /// The server is not authoritative for the zone, or the request is not authorized (`NOTAUTH`).
    public static let notAuthoritative = Self(rawValue: 9)
    /// A name is not in the zone (`NOTZONE`, RFC 2136).
    public static let notZone = Self(rawValue: 10)
    /// The server does not support the query's EDNS version (`BADVERS`, RFC 6891); needs an OPT record.
    public static let badVersion = Self(rawValue: 16)
    /// The client's cookie is bad or missing (`BADCOOKIE`, RFC 7873); needs an OPT record.
    public static let badCookie = Self(rawValue: 23)
}

/// A 16-bit DNS number with the names `dig` prints: a mnemonic (`AAAA`, `NXDOMAIN`), or for a
/// number without one the generic form `<prefix><n>` (`TYPE65280`, `RCODE12`).
public protocol DNSNumberName: RawRepresentable, Hashable, Sendable, CustomStringConvertible where RawValue == UInt16 {
    /// The number named `rawValue`.
    init(rawValue: UInt16)
    /// The mnemonic of each number that has one.
    static var mnemonics: [UInt16: String] { get }
    /// The generic form's prefix.
    static var genericPrefix: String { get }
}

extension DNSNumberName {
    /// The number a mnemonic names (`"AAAA"`, `"servfail"`) or the generic form names
    /// (`"TYPE65280"`: digits only, so `TYPE+1` and `TYPE` are no names), case-insensitively;
    /// nil for anything else.
    public init?(name: String) {
        let name = name.uppercased()
        if let known = Self.mnemonics.first(where: { $0.value == name }) {
            self.init(rawValue: known.key)
            return
        }
        let digits = name.dropFirst(Self.genericPrefix.count)
        guard name.hasPrefix(Self.genericPrefix), !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let number = UInt16(digits)
        else { return nil }
        self.init(rawValue: number)
    }

    /// The mnemonic, or the generic form for a number without one.
    public var description: String { Self.mnemonics[rawValue] ?? "\(Self.genericPrefix)\(rawValue)" }
}
