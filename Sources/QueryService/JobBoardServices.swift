import Contracts
import Domain
import RPCCore
import ReadModels

/// cqrs.queries.v1.Jobs over the read models.
public struct JobsService: QueriesAPI.Jobs.ServiceProtocol {
    let store: ReadModelStore

    public init(store: ReadModelStore) { self.store = store }

    public func getJob(_ request: QueriesAPI.GetJobRequest, context: ServerContext) async throws -> QueriesAPI.Job {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context, streamId: Job.streamId(request.jobId))
        let id = request.jobId
        guard let row = try await store.reading({ try $0.job(id) }) else { throw QueryCalls.notFound("no job \(id)") }
        return Self.job(row)
    }

    public func listJobs(_ request: QueriesAPI.ListJobsRequest, context: ServerContext) async throws -> QueriesAPI.JobPage {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context)
        let (status, after, limit) = (
            request.status?.rawValue, try QueryCalls.key(fromToken: request.pageToken), try QueryCalls.pageSize(request.pageSize)
        )
        let page = try await store.reading { try $0.jobs(status: status, after: after, limit: limit) }
        return QueriesAPI.JobPage(jobs: page.rows.map(Self.job), nextPageToken: QueryCalls.nextToken(page, \.jobId))
    }

    static func job(_ row: JobRow) -> QueriesAPI.Job {
        QueriesAPI.Job(
            jobId: row.jobId, title: row.title, description: row.description, status: QueriesAPI.JobStatus(rawValue: row.status) ?? .open,
            version: row.version, createdAt: QueryCalls.time(row.createdAt), updatedAt: QueryCalls.time(row.updatedAt), position: row.position)
    }
}

/// cqrs.queries.v1.Applications over the read models: every answer comes from the applications'
/// own rows, their job included (its copy), never from the jobs.
public struct ApplicationsService: QueriesAPI.Applications.ServiceProtocol {
    let store: ReadModelStore

    public init(store: ReadModelStore) { self.store = store }

    public func getApplication(_ request: QueriesAPI.GetApplicationRequest, context: ServerContext) async throws -> QueriesAPI.Application {
        try await QueryCalls.awaitPosition(
            request.minPosition, in: store, context: context, streamId: Application.streamId(request.applicationId))
        let id = request.applicationId
        guard let row = try await store.reading({ try $0.application(id) }) else { throw QueryCalls.notFound("no application \(id)") }
        return Self.application(row)
    }

    public func listApplications(_ request: QueriesAPI.ListApplicationsRequest, context: ServerContext) async throws
        -> QueriesAPI.ApplicationPage
    {
        try await QueryCalls.awaitPosition(request.minPosition, in: store, context: context)
        let (jobId, after, limit) = (request.jobId, try QueryCalls.key(fromToken: request.pageToken), try QueryCalls.pageSize(request.pageSize))
        let page = try await store.reading { try $0.applications(jobId: jobId, after: after, limit: limit) }
        return QueriesAPI.ApplicationPage(
            applications: page.rows.map(Self.application), nextPageToken: QueryCalls.nextToken(page, \.applicationId))
    }

    static func application(_ row: ApplicationRow) -> QueriesAPI.Application {
        QueriesAPI.Application(
            applicationId: row.applicationId, jobId: row.jobId, firstName: row.firstName, lastName: row.lastName, email: row.email,
            currentPosition: row.currentPosition,
            job: QueriesAPI.JobCopy(
                title: row.job.title, description: row.job.description, status: QueriesAPI.JobStatus(rawValue: row.job.status) ?? .open,
                version: row.job.version),
            createdAt: QueryCalls.time(row.createdAt), position: row.position)
    }
}
