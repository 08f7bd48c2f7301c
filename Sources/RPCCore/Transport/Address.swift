/// Addresses as flags and environment variables spell them, for every transport.
/// Splits `host:port` (`[::1]:7001`, `:7001` for 127.0.0.1).
public func parseAddress(_ address: String) throws -> (host: String, port: Int) {
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
        (0...65535).contains(port)
    else {
        throw RPCError(code: .invalidArgument, message: "address '\(address)' is not host:port")
    }
    var host = String(address[..<colon])
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return (host.isEmpty ? "127.0.0.1" : host, port)
}
