import CommitScheduling
import Foundation
import SQLite
import TestSupport
import Testing

@testable import EventStore

/// `CommandResultStore`: a command id's first result, and one command per id.
@Suite struct CommandResultStoreConformanceTests {
    @Test(arguments: StoreKind.allCases) func theSameCommandIdReturnsTheFirstResult(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        let first = try await store.append(AppendRequest(streamId: "C-1", expected: .noStream, events: [event()], commandId: "cmd-1"))
        // New event ids, as a retried command decided again would have: still nothing appended.
        let again = try await store.append(AppendRequest(streamId: "C-1", expected: .exact(1), events: [event()], commandId: "cmd-1"))
        #expect(again == AppendResult(streamId: "C-1", version: 1, position: first.position, duplicate: true, commandDigest: ""))
        #expect(try await store.commandResult("cmd-1")?.position == first.position)
        #expect(try await store.commandResult("cmd-2") == nil)
        #expect(try await store.headPosition() == 1)
    }

    @Test(arguments: StoreKind.allCases) func aCommandIdNamesOneCommand(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let store = try await kind.make(in: dir)
        let first = try await store.append(
            AppendRequest(streamId: "A-1", expected: .noStream, events: [event()], commandId: "cmd-1", commandDigest: "open A-1"))
        // The same command again: its first result.
        let retry = try await store.append(
            AppendRequest(streamId: "A-1", expected: .exact(1), events: [event()], commandId: "cmd-1", commandDigest: "open A-1"))
        #expect(retry.duplicate && retry.position == first.position)
        // Another command under the same id: refused, nothing appended, never the first result.
        await #expect {
            try await store.append(
                AppendRequest(streamId: "B-1", expected: .any, events: [event()], commandId: "cmd-1", commandDigest: "deposit B-1"))
        } throws: { error in
            error as? EventStoreError == .commandIdReused(commandId: "cmd-1", streamId: "A-1")
        }
        #expect(try await store.headPosition() == 1)
        #expect(try await store.commandResult("cmd-1")?.commandDigest == "open A-1")
        // A caller that does not say what the command is is not compared.
        #expect(try await store.append(AppendRequest(streamId: "B-1", expected: .any, events: [event()], commandId: "cmd-1")).duplicate)
    }
}
