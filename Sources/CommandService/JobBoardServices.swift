import CommandHandling
import Contracts
import Domain
import RPCCore

extension CommandsAPI.CreateJobRequest: IdempotentRequest {}
extension CommandsAPI.UpdateJobRequest: IdempotentRequest {}
extension CommandsAPI.ArchiveJobRequest: IdempotentRequest {}
extension CommandsAPI.CreateApplicationRequest: IdempotentRequest {}

/// cqrs.commands.v1.Jobs. A request's `version` (the job's version as the client read it) is the
/// command's expected version: a mismatch is ABORTED naming both.
public struct JobsService: CommandsAPI.Jobs.ServiceProtocol {
    let gateway: CommandGateway

    public init(gateway: CommandGateway) { self.gateway = gateway }

    public func createJob(_ request: CommandsAPI.CreateJobRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        let command = CreateJob(jobId: request.jobId ?? newId(), title: request.title, description: request.description)
        return try await gateway.send(command, request: request, expectedVersion: nil, context: context)
    }

    public func updateJob(_ request: CommandsAPI.UpdateJobRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        let command = UpdateJob(jobId: request.jobId, title: request.title, description: request.description)
        return try await gateway.send(command, request: request, expectedVersion: request.version, context: context)
    }

    public func archiveJob(_ request: CommandsAPI.ArchiveJobRequest, context: ServerContext) async throws -> CommandsAPI.CommandResult {
        try await gateway.send(ArchiveJob(jobId: request.jobId), request: request, expectedVersion: request.version, context: context)
    }
}

/// cqrs.commands.v1.Applications. The job is read from this service's own event store, always
/// from the store (not the cache: another replica may have archived it), and handed to the
/// command, whose decision stays pure.
public struct ApplicationsService: CommandsAPI.Applications.ServiceProtocol {
    let gateway: CommandGateway
    let repository: AggregateRepository

    public init(gateway: CommandGateway, repository: AggregateRepository) {
        self.gateway = gateway
        self.repository = repository
    }

    public func createApplication(_ request: CommandsAPI.CreateApplicationRequest, context: ServerContext) async throws
        -> CommandsAPI.CommandResult
    {
        var violations: [Violation] = []
        Rules.checkId(request.jobId, field: "jobId", into: &violations)
        let job = violations.isEmpty ? try await repository.loadFromStore(Job.self, streamId: Job.streamId(request.jobId)) : nil
        let command = CreateApplication(
            applicationId: request.applicationId ?? newId(), jobId: request.jobId, firstName: request.firstName, lastName: request.lastName,
            email: request.email, currentPosition: request.currentPosition, job: job.flatMap { $0.version > 0 ? $0 : nil })
        return try await gateway.send(command, request: request, expectedVersion: nil, context: context)
    }
}
