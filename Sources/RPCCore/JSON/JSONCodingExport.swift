// The JSON reader and writer live in their own module (the domain uses them too, without the
// RPC layer); everything that imports RPCCore, generated code included, sees them as before.
@_exported import JSONCoding
