import ArgumentParser
import Contracts

/// `cqrs jobs create|update|archive|get|list`: the job board's jobs.
struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The job board's jobs: create, update, archive (commands); get, list (queries).",
        subcommands: [Create.self, Update.self, Archive.self, Get.self, List.self])

    static func jobTable(_ jobs: [QueriesAPI.Job]) -> String {
        table(
            [["ID", "TITLE", "STATUS", "VERSION", "UPDATED"]]
                + jobs.map { [$0.jobId, $0.title, $0.status.rawValue, String($0.version), $0.updatedAt] })
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Post a job (published on the job topic).")
        @OptionGroup var connection: CommandServiceConnection
        @Option(help: "The job id (generated when absent).") var id: String?
        @Option var title: String
        @Option var description: String

        func run() async throws {
            try await reporting {
                let result = try await CommandsAPI.Jobs.Client(try connection.client()).createJob(
                    .init(jobId: id, title: title, description: description, commandId: connection.commandId), options: connection.options)
                connection.show(result)
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a job's title and description, if it is still at the version you read (else ABORTED).")
        @OptionGroup var connection: CommandServiceConnection
        @Argument(help: "The job id.") var id: String
        @Option var title: String
        @Option var description: String
        @Option(help: "The job's version as you read it (jobs get shows it; a command prints the new one).") var version: Int64

        func run() async throws {
            try await reporting {
                let result = try await CommandsAPI.Jobs.Client(try connection.client()).updateJob(
                    .init(jobId: id, title: title, description: description, version: version, commandId: connection.commandId),
                    options: connection.options)
                connection.show(result)
            }
        }
    }

    struct Archive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Archive a job, if it is still at the version you read: no more updates or applications.")
        @OptionGroup var connection: CommandServiceConnection
        @Argument(help: "The job id.") var id: String
        @Option(help: "The job's version as you read it.") var version: Int64

        func run() async throws {
            try await reporting {
                let result = try await CommandsAPI.Jobs.Client(try connection.client()).archiveJob(
                    .init(jobId: id, version: version, commandId: connection.commandId), options: connection.options)
                connection.show(result)
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one job (query).")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @Argument(help: "The job id.") var id: String

        func run() async throws {
            try await reporting {
                let job = try await QueriesAPI.Jobs.Client(try connection.client()).getJob(
                    .init(jobId: id, minPosition: consistency.minPosition), options: connection.options)
                connection.show(job) { jobTable([job]) + "\n\n" + job.description }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs by id, optionally only open or archived ones (query).")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @OptionGroup var paging: Paging
        @Option(help: "OPEN or ARCHIVED.") var status: String?

        func run() async throws {
            try await reporting {
                let wanted = try status.map { text in
                    guard let status = QueriesAPI.JobStatus(rawValue: text.uppercased()) else {
                        throw ValidationError("--status is OPEN or ARCHIVED, not \(text)")
                    }
                    return status
                }
                let page = try await QueriesAPI.Jobs.Client(try connection.client()).listJobs(
                    .init(status: wanted, pageSize: paging.pageSize, pageToken: paging.pageToken, minPosition: consistency.minPosition),
                    options: connection.options)
                connection.show(page) { jobTable(page.jobs) + nextPage(page.nextPageToken) }
            }
        }
    }
}

/// `cqrs applications create|get|list`: applications to the job board's jobs.
struct Applications: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Applications to jobs: create (command); get, list (queries), each with its own copy of its job.",
        subcommands: [Create.self, Get.self, List.self])

    static func applicationTable(_ applications: [QueriesAPI.Application]) -> String {
        table(
            [["ID", "JOB", "NAME", "EMAIL", "JOB TITLE (COPY)", "JOB STATUS"]]
                + applications.map {
                    [$0.applicationId, $0.jobId, "\($0.firstName) \($0.lastName)", $0.email, $0.job.title, $0.job.status.rawValue]
                })
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply to an open job (refused when the job does not exist or is archived).")
        @OptionGroup var connection: CommandServiceConnection
        @Option(help: "The application id (generated when absent).") var id: String?
        @Option(help: "The job applied to.") var job: String
        @Option var firstName: String
        @Option var lastName: String
        @Option var email: String
        @Option(help: "The candidate's current job title.") var currentPosition: String

        func run() async throws {
            try await reporting {
                let result = try await CommandsAPI.Applications.Client(try connection.client()).createApplication(
                    .init(
                        applicationId: id, jobId: job, firstName: firstName, lastName: lastName, email: email, currentPosition: currentPosition,
                        commandId: connection.commandId), options: connection.options)
                connection.show(result)
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one application with its copy of the job (query).")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @Argument(help: "The application id.") var id: String

        func run() async throws {
            try await reporting {
                let application = try await QueriesAPI.Applications.Client(try connection.client()).getApplication(
                    .init(applicationId: id, minPosition: consistency.minPosition), options: connection.options)
                connection.show(application) { applicationTable([application]) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List applications by id, optionally of one job (query).")
        @OptionGroup var connection: QueryServiceConnection
        @OptionGroup var consistency: ReadYourWrites
        @OptionGroup var paging: Paging
        @Option(help: "Only the applications to this job.") var job: String?

        func run() async throws {
            try await reporting {
                let page = try await QueriesAPI.Applications.Client(try connection.client()).listApplications(
                    .init(jobId: job, pageSize: paging.pageSize, pageToken: paging.pageToken, minPosition: consistency.minPosition),
                    options: connection.options)
                connection.show(page) { applicationTable(page.applications) + nextPage(page.nextPageToken) }
            }
        }
    }
}
