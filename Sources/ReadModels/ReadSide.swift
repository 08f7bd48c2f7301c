/// Every domain's read side, in the order their projections apply an event they share. A new
/// domain's read models are a folder of files (a `ReadModelProjection`, its queries) plus one entry
/// here; the engine needs no change.
public enum ReadSide {
    public static let projections: [any ReadModelProjection] = [
        AccountsProjection(), OrdersProjection(), JobsProjection(), ApplicationsProjection(),
    ]
}
