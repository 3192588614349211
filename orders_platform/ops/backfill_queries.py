"""The GraphQL the UI sends for asset backfills, checked against the installed
dagster-graphql schema by the tests (a renamed field fails there, not in production)."""

# The error members of each result union (any __typename but the success type is one).
# Most implement the `Error` interface (message); the others carry their own fields.
_ERROR_FIELDS = """
    ... on Error { message }
    ... on PythonError { className }
"""
_LAUNCH_ERROR_FIELDS = (
    _ERROR_FIELDS
    + """    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on RunConfigValidationInvalid { pipelineName errors { message } }
"""
)

LAUNCH_PARTITION_BACKFILL_MUTATION = (
    """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }"""
    + _LAUNCH_ERROR_FIELDS
    + """  }
}
"""
)

RESUME_BACKFILL_MUTATION = (
    """
mutation ResumeBackfill($backfillId: String!) {
  resumePartitionBackfill(backfillId: $backfillId) {
    __typename
    ... on ResumeBackfillSuccess { backfillId }"""
    + _ERROR_FIELDS
    + """  }
}
"""
)

CANCEL_BACKFILL_MUTATION = (
    """
mutation CancelBackfill($backfillId: String!) {
  cancelPartitionBackfill(backfillId: $backfillId) {
    __typename
    ... on CancelBackfillSuccess { backfillId }"""
    + _ERROR_FIELDS
    + """  }
}
"""
)

ASSET_NODES_QUERY = """
query AssetNodesForBackfill {
  assetNodes {
    assetKey { path }
    isPartitioned
    isMaterializable
    repository { name location { name } }
  }
}
"""

BACKFILL_STATUS_QUERY = (
    """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      isAssetBackfill
      numPartitions
      partitionNames
      title
      timestamp
      endTimestamp
      assetSelection { path }
      error { message className }
      runs { runId status tags { key value } assetSelection { path } }
      assetBackfillData {
        rootTargetedPartitions { partitionKeys ranges { start end } }
        assetBackfillStatuses {
          __typename
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted
            numPartitionsInProgress
            numPartitionsMaterialized
            numPartitionsFailed
          }
          ... on UnpartitionedAssetStatus {
            assetKey { path }
            inProgress
            materialized
            failed
          }
        }
      }
    }"""
    + _ERROR_FIELDS
    + """  }
}
"""
)
