public import NIOSSL

/// Where a server's TLS certificate chain and private key are (PEM files).
public struct TLSFiles: Sendable, Hashable {
    public var certificateChain: String
    public var privateKey: String

    public init(certificateChain: String, privateKey: String) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }

    /// A server context with TLS 1.2 or later. `applicationProtocols` are offered by ALPN
    /// (the HTTP/2 edge offers `h2`, as gRPC clients over TLS require).
    public func makeServerContext(applicationProtocols: [String] = []) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificateSource]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateChain).map { .certificate($0) }
        } catch {
            throw TLSFileError(description: "cannot read the TLS certificate chain \(certificateChain) (PEM): \(error)")
        }
        guard !chain.isEmpty else { throw TLSFileError(description: "no certificate in \(certificateChain)") }
        do {
            // Read as PEM whatever the file is called (`.file` would take a non-.pem name for DER).
            key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
        } catch {
            throw TLSFileError(description: "cannot read the TLS private key \(privateKey) (PEM): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = applicationProtocols
        return try NIOSSLContext(configuration: configuration)
    }
}

/// A certificate, key or CA file that cannot be used, named with its path.
public struct TLSFileError: Error, CustomStringConvertible {
    public var description: String
}

/// How a client checks the server it dials over TLS.
public enum TLSTrust: Sendable, Hashable {
    /// The system's trust roots.
    case system
    /// Only certificates issued by the CA in this PEM file (a private CA, as the demo uses).
    case certificateAuthority(file: String)

    /// A client context that verifies the server's chain and name (TLS 1.2 or later).
    public func makeClientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if case .certificateAuthority(let file) = self {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
            } catch {
                throw TLSFileError(description: "cannot read the CA certificate \(file) (PEM): \(error)")
            }
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
