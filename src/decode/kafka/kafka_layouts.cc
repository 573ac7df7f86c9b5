// Kafka message layouts (the fields spanfeed reads of each api key it parses, by version, after Apache Kafka's
// clients/src/main/resources/common/message/*.json), api key names and error code names.
// Constant data, read on worker lcores; no allocation.
#include <array>

#include "kafka_wire.h"

namespace spanfeed::kafka {
namespace {

using K = OpKind;
using R = Role;

// Ops gated by version carry [min, max]; the ops of an array element run only when the array itself is present.
// Each array element ends in kTags when the element is a struct (flexible versions tag every struct).

constexpr Op kProduceReq[] = {
    {K::kStr, R::kTransactional, 3}, {K::kI16, R::kAcks}, {K::kI32},
    {K::kArr},
    /**/ {K::kStr, R::kTopic, 0, 12}, {K::kUuid, R::kNone, 13},
    /**/ {K::kArr},
    /*    */ {K::kI32, R::kPartition}, {K::kRecords, R::kRecordSet}, {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd}, {K::kTags},
};
constexpr Op kProduceResp[] = {
    {K::kArr},
    /**/ {K::kStr, R::kNone, 0, 12}, {K::kUuid, R::kNone, 13},
    /**/ {K::kArr},
    /*    */ {K::kI32, R::kPartition}, {K::kI16, R::kItemError}, {K::kI64}, {K::kI64, R::kNone, 2},
    /*    */ {K::kI64, R::kNone, 5},
    /*    */ {K::kArr, R::kNone, 8}, {K::kI32}, {K::kStr}, {K::kTags}, {K::kEnd},
    /*    */ {K::kStr, R::kErrorMessage, 8}, {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd},
    {K::kI32, R::kThrottle, 1}, {K::kTags},
};

constexpr Op kFetchReq[] = {
    {K::kI32, R::kNone, 0, 14}, {K::kI32}, {K::kI32}, {K::kI32, R::kNone, 3}, {K::kI8, R::kNone, 4},
    {K::kI32, R::kNone, 7}, {K::kI32, R::kNone, 7},
    {K::kArr},
    /**/ {K::kStr, R::kTopic, 0, 12}, {K::kUuid, R::kNone, 13},
    /**/ {K::kArr},
    /*    */ {K::kI32, R::kPartition}, {K::kI32, R::kNone, 9}, {K::kI64}, {K::kI32, R::kNone, 12},
    /*    */ {K::kI64, R::kNone, 5}, {K::kI32}, {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd},
    {K::kArr, R::kNone, 7},
    /**/ {K::kStr, R::kNone, 7, 12}, {K::kUuid, R::kNone, 13}, {K::kArr}, {K::kI32}, {K::kEnd}, {K::kTags},
    {K::kEnd},
    {K::kStr, R::kNone, 11}, {K::kTags},
};
constexpr Op kFetchResp[] = {
    {K::kI32, R::kThrottle, 1}, {K::kI16, R::kTopError, 7}, {K::kI32, R::kNone, 7},
    {K::kArr},
    /**/ {K::kStr, R::kNone, 0, 12}, {K::kUuid, R::kNone, 13},
    /**/ {K::kArr},
    /*    */ {K::kI32, R::kPartition}, {K::kI16, R::kItemError}, {K::kI64}, {K::kI64, R::kNone, 4},
    /*    */ {K::kI64, R::kNone, 5},
    /*    */ {K::kArr, R::kNone, 4}, {K::kI64}, {K::kI64}, {K::kTags}, {K::kEnd},
    /*    */ {K::kI32, R::kNone, 11}, {K::kRecords, R::kRecordSet}, {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kListOffsetsReq[] = {
    {K::kI32}, {K::kI8, R::kNone, 2},
    {K::kArr},
    /**/ {K::kStr, R::kTopic},
    /**/ {K::kArr},
    /*    */ {K::kI32, R::kPartition}, {K::kI32, R::kNone, 4}, {K::kI64}, {K::kI32, R::kNone, 0, 0}, {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd},
    {K::kI32, R::kNone, 10}, {K::kTags},
};
constexpr Op kListOffsetsResp[] = {
    {K::kI32, R::kThrottle, 2},
    {K::kArr},
    /**/ {K::kStr},
    /**/ {K::kArr},
    /*    */ {K::kI32, R::kPartition}, {K::kI16, R::kItemError},
    /*    */ {K::kArr, R::kNone, 0, 0}, {K::kI64}, {K::kEnd},
    /*    */ {K::kI64, R::kNone, 1}, {K::kI64, R::kNone, 1}, {K::kI32, R::kNone, 4}, {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kMetadataReq[] = {
    {K::kArr},
    /**/ {K::kUuid, R::kNone, 10}, {K::kStr, R::kTopic}, {K::kTags},
    {K::kEnd},
    {K::kI8, R::kNone, 4}, {K::kI8, R::kNone, 8, 10}, {K::kI8, R::kNone, 8}, {K::kTags},
};
constexpr Op kMetadataResp[] = {
    {K::kI32, R::kThrottle, 3},
    {K::kArr},
    /**/ {K::kI32}, {K::kStr}, {K::kI32}, {K::kStr, R::kNone, 1}, {K::kTags},
    {K::kEnd},
    {K::kStr, R::kNone, 2}, {K::kI32, R::kNone, 1},
    {K::kArr},
    /**/ {K::kI16, R::kItemError}, {K::kStr}, {K::kUuid, R::kNone, 10}, {K::kI8, R::kNone, 1},
    /**/ {K::kArr},
    /*    */ {K::kI16, R::kItemError}, {K::kI32, R::kPartition}, {K::kI32}, {K::kI32, R::kNone, 7},
    /*    */ {K::kArr}, {K::kI32}, {K::kEnd},
    /*    */ {K::kArr}, {K::kI32}, {K::kEnd},
    /*    */ {K::kArr, R::kNone, 5}, {K::kI32}, {K::kEnd},
    /*    */ {K::kTags},
    /**/ {K::kEnd},
    /**/ {K::kI32, R::kNone, 8}, {K::kTags},
    {K::kEnd},
    {K::kI32, R::kNone, 8, 10}, {K::kI16, R::kTopError, 13}, {K::kTags},
};

constexpr Op kOffsetCommitReq[] = {
    {K::kStr, R::kGroup}, {K::kI32, R::kGeneration, 1}, {K::kStr, R::kMember, 1}, {K::kStr, R::kNone, 7},
    {K::kI64, R::kNone, 2, 4},
    {K::kArr},
    /**/ {K::kStr, R::kTopic},
    /**/ {K::kArr},
    /*    */ {K::kI32, R::kPartition}, {K::kI64}, {K::kI32, R::kNone, 6}, {K::kI64, R::kNone, 1, 1}, {K::kStr},
    /*    */ {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd}, {K::kTags},
};
constexpr Op kOffsetCommitResp[] = {
    {K::kI32, R::kThrottle, 3},
    {K::kArr},
    /**/ {K::kStr},
    /**/ {K::kArr}, {K::kI32, R::kPartition}, {K::kI16, R::kItemError}, {K::kTags}, {K::kEnd},
    /**/ {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kOffsetFetchReq[] = {
    {K::kStr, R::kGroup, 0, 7},
    {K::kArr, R::kNone, 0, 7},
    /**/ {K::kStr, R::kTopic}, {K::kArr}, {K::kI32, R::kPartition}, {K::kEnd}, {K::kTags},
    {K::kEnd},
    {K::kArr, R::kNone, 8},
    /**/ {K::kStr, R::kGroup}, {K::kStr, R::kMember, 9}, {K::kI32, R::kNone, 9},
    /**/ {K::kArr},
    /*    */ {K::kStr, R::kTopic}, {K::kArr}, {K::kI32, R::kPartition}, {K::kEnd}, {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd},
    {K::kI8, R::kNone, 7}, {K::kTags},
};
constexpr Op kOffsetFetchResp[] = {
    {K::kI32, R::kThrottle, 3},
    {K::kArr, R::kNone, 0, 7},
    /**/ {K::kStr},
    /**/ {K::kArr},
    /*    */ {K::kI32, R::kPartition}, {K::kI64}, {K::kI32, R::kNone, 5}, {K::kStr}, {K::kI16, R::kItemError},
    /*    */ {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd},
    {K::kI16, R::kTopError, 2, 7},
    {K::kArr, R::kNone, 8},
    /**/ {K::kStr},
    /**/ {K::kArr},
    /*    */ {K::kStr},
    /*    */ {K::kArr},
    /*        */ {K::kI32, R::kPartition}, {K::kI64}, {K::kI32}, {K::kStr}, {K::kI16, R::kItemError}, {K::kTags},
    /*    */ {K::kEnd}, {K::kTags},
    /**/ {K::kEnd},
    /**/ {K::kI16, R::kItemError}, {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kFindCoordinatorReq[] = {
    {K::kStr, R::kCoordinatorKey, 0, 3}, {K::kI8, R::kNone, 1},
    {K::kArr, R::kNone, 4}, {K::kStr, R::kCoordinatorKey}, {K::kEnd},
    {K::kTags},
};
constexpr Op kFindCoordinatorResp[] = {
    {K::kI32, R::kThrottle, 1}, {K::kI16, R::kTopError, 0, 3}, {K::kStr, R::kErrorMessage, 1, 3},
    {K::kI32, R::kNone, 0, 3}, {K::kStr, R::kNone, 0, 3}, {K::kI32, R::kNone, 0, 3},
    {K::kArr, R::kNone, 4},
    /**/ {K::kStr}, {K::kI32}, {K::kStr}, {K::kI32}, {K::kI16, R::kItemError}, {K::kStr, R::kErrorMessage},
    /**/ {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kJoinGroupReq[] = {
    {K::kStr, R::kGroup}, {K::kI32}, {K::kI32, R::kNone, 1}, {K::kStr, R::kMember}, {K::kStr, R::kNone, 5},
    {K::kStr},
    {K::kArr}, {K::kStr}, {K::kBytes}, {K::kTags}, {K::kEnd},
    {K::kStr, R::kNone, 8}, {K::kTags},
};
constexpr Op kJoinGroupResp[] = {
    {K::kI32, R::kThrottle, 2}, {K::kI16, R::kTopError}, {K::kI32, R::kGeneration}, {K::kStr, R::kNone, 7},
    {K::kStr, R::kProtocolName}, {K::kStr}, {K::kI8, R::kNone, 9}, {K::kStr, R::kMember},
    {K::kArr}, {K::kStr}, {K::kStr, R::kNone, 5}, {K::kBytes}, {K::kTags}, {K::kEnd},
    {K::kTags},
};

constexpr Op kHeartbeatReq[] = {
    {K::kStr, R::kGroup}, {K::kI32, R::kGeneration}, {K::kStr, R::kMember}, {K::kStr, R::kNone, 3}, {K::kTags},
};
constexpr Op kThrottleErrorResp1[] = {{K::kI32, R::kThrottle, 1}, {K::kI16, R::kTopError}, {K::kTags}};
constexpr Op kThrottleErrorResp[] = {{K::kI32, R::kThrottle}, {K::kI16, R::kTopError}, {K::kTags}};

constexpr Op kLeaveGroupReq[] = {
    {K::kStr, R::kGroup}, {K::kStr, R::kMember, 0, 2},
    {K::kArr, R::kNone, 3}, {K::kStr, R::kMember}, {K::kStr}, {K::kStr, R::kNone, 5}, {K::kTags}, {K::kEnd},
    {K::kTags},
};
constexpr Op kLeaveGroupResp[] = {
    {K::kI32, R::kThrottle, 1}, {K::kI16, R::kTopError},
    {K::kArr, R::kNone, 3}, {K::kStr}, {K::kStr}, {K::kI16, R::kItemError}, {K::kTags}, {K::kEnd},
    {K::kTags},
};

constexpr Op kSyncGroupReq[] = {
    {K::kStr, R::kGroup}, {K::kI32, R::kGeneration}, {K::kStr, R::kMember}, {K::kStr, R::kNone, 3},
    {K::kStr, R::kNone, 5}, {K::kStr, R::kNone, 5},
    {K::kArr}, {K::kStr}, {K::kBytes}, {K::kTags}, {K::kEnd},
    {K::kTags},
};
constexpr Op kSyncGroupResp[] = {
    {K::kI32, R::kThrottle, 1}, {K::kI16, R::kTopError}, {K::kStr, R::kNone, 5}, {K::kStr, R::kProtocolName, 5},
    {K::kBytes}, {K::kTags},
};

constexpr Op kDescribeGroupsReq[] = {
    {K::kArr}, {K::kStr, R::kGroup}, {K::kEnd}, {K::kI8, R::kNone, 3}, {K::kTags},
};
constexpr Op kDescribeGroupsResp[] = {
    {K::kI32, R::kThrottle, 1},
    {K::kArr},
    /**/ {K::kI16, R::kItemError}, {K::kStr}, {K::kStr}, {K::kStr}, {K::kStr},
    /**/ {K::kArr},
    /*    */ {K::kStr}, {K::kStr, R::kNone, 4}, {K::kStr}, {K::kStr}, {K::kBytes}, {K::kBytes}, {K::kTags},
    /**/ {K::kEnd},
    /**/ {K::kI32, R::kNone, 3}, {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kListGroupsReq[] = {
    {K::kArr, R::kNone, 4}, {K::kStr}, {K::kEnd}, {K::kArr, R::kNone, 5}, {K::kStr}, {K::kEnd}, {K::kTags},
};
constexpr Op kListGroupsResp[] = {
    {K::kI32, R::kThrottle, 1}, {K::kI16, R::kTopError},
    {K::kArr}, {K::kStr}, {K::kStr}, {K::kStr, R::kNone, 4}, {K::kStr, R::kNone, 5}, {K::kTags}, {K::kEnd},
    {K::kTags},
};

constexpr Op kSaslHandshakeReq[] = {{K::kStr}};
constexpr Op kSaslHandshakeResp[] = {{K::kI16, R::kTopError}, {K::kArr}, {K::kStr}, {K::kEnd}};

constexpr Op kApiVersionsReq[] = {{K::kStr, R::kNone, 3}, {K::kStr, R::kNone, 3}, {K::kTags}};
constexpr Op kApiVersionsResp[] = {
    {K::kI16, R::kTopError},
    {K::kArr}, {K::kI16}, {K::kI16}, {K::kI16}, {K::kTags}, {K::kEnd},
    {K::kI32, R::kThrottle, 1}, {K::kTags},
};

constexpr Op kCreateTopicsReq[] = {
    {K::kArr},
    /**/ {K::kStr, R::kTopic}, {K::kI32}, {K::kI16},
    /**/ {K::kArr}, {K::kI32}, {K::kArr}, {K::kI32}, {K::kEnd}, {K::kTags}, {K::kEnd},
    /**/ {K::kArr}, {K::kStr}, {K::kStr}, {K::kTags}, {K::kEnd},
    /**/ {K::kTags},
    {K::kEnd},
    {K::kI32}, {K::kI8, R::kNone, 1}, {K::kTags},
};
constexpr Op kCreateTopicsResp[] = {
    {K::kI32, R::kThrottle, 2},
    {K::kArr},
    /**/ {K::kStr}, {K::kUuid, R::kNone, 7}, {K::kI16, R::kItemError}, {K::kStr, R::kErrorMessage, 1},
    /**/ {K::kI32, R::kNone, 5}, {K::kI16, R::kNone, 5},
    /**/ {K::kArr, R::kNone, 5}, {K::kStr}, {K::kStr}, {K::kI8}, {K::kI8}, {K::kI8}, {K::kTags}, {K::kEnd},
    /**/ {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kDeleteTopicsReq[] = {
    {K::kArr, R::kNone, 6}, {K::kStr, R::kTopic}, {K::kUuid}, {K::kTags}, {K::kEnd},
    {K::kArr, R::kNone, 0, 5}, {K::kStr, R::kTopic}, {K::kEnd},
    {K::kI32}, {K::kTags},
};
constexpr Op kDeleteTopicsResp[] = {
    {K::kI32, R::kThrottle, 1},
    {K::kArr}, {K::kStr}, {K::kUuid, R::kNone, 6}, {K::kI16, R::kItemError}, {K::kStr, R::kErrorMessage, 5},
    /**/ {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kDeleteRecordsReq[] = {
    {K::kArr},
    /**/ {K::kStr, R::kTopic}, {K::kArr}, {K::kI32, R::kPartition}, {K::kI64}, {K::kTags}, {K::kEnd}, {K::kTags},
    {K::kEnd},
    {K::kI32}, {K::kTags},
};
constexpr Op kDeleteRecordsResp[] = {
    {K::kI32, R::kThrottle},
    {K::kArr},
    /**/ {K::kStr},
    /**/ {K::kArr}, {K::kI32, R::kPartition}, {K::kI64}, {K::kI16, R::kItemError}, {K::kTags}, {K::kEnd},
    /**/ {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kInitProducerIdReq[] = {
    {K::kStr, R::kTransactional}, {K::kI32}, {K::kI64, R::kNone, 3}, {K::kI16, R::kNone, 3}, {K::kTags},
};
constexpr Op kInitProducerIdResp[] = {
    {K::kI32, R::kThrottle}, {K::kI16, R::kTopError}, {K::kI64}, {K::kI16}, {K::kTags},
};

constexpr Op kOffsetForLeaderEpochReq[] = {
    {K::kI32, R::kNone, 3},
    {K::kArr},
    /**/ {K::kStr, R::kTopic},
    /**/ {K::kArr}, {K::kI32, R::kPartition}, {K::kI32, R::kNone, 2}, {K::kI32}, {K::kTags}, {K::kEnd},
    /**/ {K::kTags},
    {K::kEnd}, {K::kTags},
};
constexpr Op kOffsetForLeaderEpochResp[] = {
    {K::kI32, R::kThrottle, 2},
    {K::kArr},
    /**/ {K::kStr},
    /**/ {K::kArr}, {K::kI16, R::kItemError}, {K::kI32, R::kPartition}, {K::kI32, R::kNone, 1}, {K::kI64},
    /*    */ {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kAddPartitionsToTxnReq[] = {
    {K::kStr, R::kTransactional}, {K::kI64}, {K::kI16},
    {K::kArr}, {K::kStr, R::kTopic}, {K::kArr}, {K::kI32, R::kPartition}, {K::kEnd}, {K::kTags}, {K::kEnd},
    {K::kTags},
};
constexpr Op kTopicPartitionErrorsResp[] = {  // AddPartitionsToTxn v0-3, TxnOffsetCommit
    {K::kI32, R::kThrottle},
    {K::kArr},
    /**/ {K::kStr},
    /**/ {K::kArr}, {K::kI32, R::kPartition}, {K::kI16, R::kItemError}, {K::kTags}, {K::kEnd},
    /**/ {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kAddOffsetsToTxnReq[] = {
    {K::kStr, R::kTransactional}, {K::kI64}, {K::kI16}, {K::kStr, R::kGroup}, {K::kTags},
};
constexpr Op kEndTxnReq[] = {{K::kStr, R::kTransactional}, {K::kI64}, {K::kI16}, {K::kI8}, {K::kTags}};

constexpr Op kTxnOffsetCommitReq[] = {
    {K::kStr, R::kTransactional}, {K::kStr, R::kGroup}, {K::kI64}, {K::kI16}, {K::kI32, R::kGeneration, 3},
    {K::kStr, R::kMember, 3}, {K::kStr, R::kNone, 3},
    {K::kArr},
    /**/ {K::kStr, R::kTopic},
    /**/ {K::kArr}, {K::kI32, R::kPartition}, {K::kI64}, {K::kI32, R::kNone, 2}, {K::kStr}, {K::kTags}, {K::kEnd},
    /**/ {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kDescribeConfigsReq[] = {
    {K::kArr}, {K::kI8}, {K::kStr}, {K::kArr}, {K::kStr}, {K::kEnd}, {K::kTags}, {K::kEnd},
    {K::kI8, R::kNone, 1}, {K::kI8, R::kNone, 3}, {K::kTags},
};
constexpr Op kDescribeConfigsResp[] = {
    {K::kI32, R::kThrottle},
    {K::kArr},
    /**/ {K::kI16, R::kItemError}, {K::kStr, R::kErrorMessage}, {K::kI8}, {K::kStr},
    /**/ {K::kArr},
    /*    */ {K::kStr}, {K::kStr}, {K::kI8}, {K::kI8, R::kNone, 0, 0}, {K::kI8, R::kNone, 1}, {K::kI8},
    /*    */ {K::kArr, R::kNone, 1}, {K::kStr}, {K::kStr}, {K::kI8}, {K::kTags}, {K::kEnd},
    /*    */ {K::kI8, R::kNone, 3}, {K::kStr, R::kNone, 3}, {K::kTags},
    /**/ {K::kEnd}, {K::kTags},
    {K::kEnd}, {K::kTags},
};

constexpr Op kSaslAuthenticateReq[] = {{K::kBytes}, {K::kTags}};
constexpr Op kSaslAuthenticateResp[] = {
    {K::kI16, R::kTopError}, {K::kStr, R::kErrorMessage}, {K::kBytes}, {K::kI64, R::kNone, 1}, {K::kTags},
};

constexpr Op kCreatePartitionsReq[] = {
    {K::kArr},
    /**/ {K::kStr, R::kTopic}, {K::kI32},
    /**/ {K::kArr}, {K::kArr}, {K::kI32}, {K::kEnd}, {K::kTags}, {K::kEnd},
    /**/ {K::kTags},
    {K::kEnd},
    {K::kI32}, {K::kI8}, {K::kTags},
};
constexpr Op kTopicErrorMessageResp[] = {  // CreatePartitions
    {K::kI32, R::kThrottle},
    {K::kArr}, {K::kStr}, {K::kI16, R::kItemError}, {K::kStr, R::kErrorMessage}, {K::kTags}, {K::kEnd},
    {K::kTags},
};

constexpr Op kDeleteGroupsReq[] = {{K::kArr}, {K::kStr, R::kGroup}, {K::kEnd}, {K::kTags}};
constexpr Op kDeleteGroupsResp[] = {
    {K::kI32, R::kThrottle}, {K::kArr}, {K::kStr}, {K::kI16, R::kItemError}, {K::kTags}, {K::kEnd}, {K::kTags},
};

// Prefixes: the leading fields only (the rest of the message is skipped by length).
constexpr Op kDescribeClusterReq[] = {{K::kI8}, {K::kI8, R::kNone, 1}, {K::kTags}};
constexpr Op kThrottleErrorMessagePrefix[] = {
    {K::kI32, R::kThrottle}, {K::kI16, R::kTopError}, {K::kStr, R::kErrorMessage},
};
constexpr Op kGroupMemberPrefix[] = {{K::kStr, R::kGroup}, {K::kStr, R::kMember}};
constexpr Op kGroupHeartbeatRespPrefix[] = {
    {K::kI32, R::kThrottle}, {K::kI16, R::kTopError}, {K::kStr, R::kErrorMessage}, {K::kStr, R::kMember},
};

constexpr std::string_view kApiNames[] = {
    "Produce", "Fetch", "ListOffsets", "Metadata", "LeaderAndIsr", "StopReplica", "UpdateMetadata",
    "ControlledShutdown", "OffsetCommit", "OffsetFetch", "FindCoordinator", "JoinGroup", "Heartbeat",
    "LeaveGroup", "SyncGroup", "DescribeGroups", "ListGroups", "SaslHandshake", "ApiVersions", "CreateTopics",
    "DeleteTopics", "DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch", "AddPartitionsToTxn",
    "AddOffsetsToTxn", "EndTxn", "WriteTxnMarkers", "TxnOffsetCommit", "DescribeAcls", "CreateAcls", "DeleteAcls",
    "DescribeConfigs", "AlterConfigs", "AlterReplicaLogDirs", "DescribeLogDirs", "SaslAuthenticate",
    "CreatePartitions", "CreateDelegationToken", "RenewDelegationToken", "ExpireDelegationToken",
    "DescribeDelegationToken", "DeleteGroups", "ElectLeaders", "IncrementalAlterConfigs",
    "AlterPartitionReassignments", "ListPartitionReassignments", "OffsetDelete", "DescribeClientQuotas",
    "AlterClientQuotas", "DescribeUserScramCredentials", "AlterUserScramCredentials", "Vote", "BeginQuorumEpoch",
    "EndQuorumEpoch", "DescribeQuorum", "AlterPartition", "UpdateFeatures", "Envelope", "FetchSnapshot",
    "DescribeCluster", "DescribeProducers", "BrokerRegistration", "BrokerHeartbeat", "UnregisterBroker",
    "DescribeTransactions", "ListTransactions", "AllocateProducerIds", "ConsumerGroupHeartbeat",
    "ConsumerGroupDescribe", "ControllerRegistration", "GetTelemetrySubscriptions", "PushTelemetry",
    "AssignReplicasToDirs", "ListClientMetricsResources", "DescribeTopicPartitions", "ShareGroupHeartbeat",
    "ShareGroupDescribe", "ShareFetch", "ShareAcknowledge", "AddRaftVoter", "RemoveRaftVoter", "UpdateRaftVoter",
    "InitializeShareGroupState", "ReadShareGroupState", "WriteShareGroupState", "DeleteShareGroupState",
    "ReadShareGroupStateSummary", "StreamsGroupHeartbeat", "StreamsGroupDescribe",
};
constexpr size_t kApiCount = std::size(kApiNames);

// First flexible version of each api key (Kafka's "flexibleVersions"); kNoFlexible: none.
constexpr uint8_t kFlexibleFrom[kApiCount] = {
    9, 12, 6, 9, 4, 2, 6, 3, 8, 6, 3, 6, 4, 4, 4, 5, 3, kNoFlexible, 3, 5,  // 0-19
    4, 2, 2, 4, 3, 3, 3, 1, 3, 2, 2, 2, 4, 2, 2, 2, 2, 2, 2, 2,            // 20-39
    2, 2, 2, 2, 1, 0, 0, kNoFlexible, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // 40-59
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,            // 60-79
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                                          // 80-89
};
static_assert(std::size(kFlexibleFrom) == kApiCount);

struct Parsed {
  int16_t key;
  uint8_t max_version;
  std::span<const Op> req;
  std::span<const Op> resp;
};
constexpr Parsed kParsed[] = {
    {0, 13, kProduceReq, kProduceResp},
    {1, 17, kFetchReq, kFetchResp},
    {2, 10, kListOffsetsReq, kListOffsetsResp},
    {3, 13, kMetadataReq, kMetadataResp},
    {8, 9, kOffsetCommitReq, kOffsetCommitResp},
    {9, 9, kOffsetFetchReq, kOffsetFetchResp},
    {10, 6, kFindCoordinatorReq, kFindCoordinatorResp},
    {11, 9, kJoinGroupReq, kJoinGroupResp},
    {12, 4, kHeartbeatReq, kThrottleErrorResp1},
    {13, 5, kLeaveGroupReq, kLeaveGroupResp},
    {14, 5, kSyncGroupReq, kSyncGroupResp},
    {15, 5, kDescribeGroupsReq, kDescribeGroupsResp},
    {16, 5, kListGroupsReq, kListGroupsResp},
    {17, 1, kSaslHandshakeReq, kSaslHandshakeResp},
    {18, 4, kApiVersionsReq, kApiVersionsResp},
    {19, 7, kCreateTopicsReq, kCreateTopicsResp},
    {20, 6, kDeleteTopicsReq, kDeleteTopicsResp},
    {21, 2, kDeleteRecordsReq, kDeleteRecordsResp},
    {22, 5, kInitProducerIdReq, kInitProducerIdResp},
    {23, 4, kOffsetForLeaderEpochReq, kOffsetForLeaderEpochResp},
    {24, 3, kAddPartitionsToTxnReq, kTopicPartitionErrorsResp},
    {25, 4, kAddOffsetsToTxnReq, kThrottleErrorResp},
    {26, 4, kEndTxnReq, kThrottleErrorResp},
    {28, 3, kTxnOffsetCommitReq, kTopicPartitionErrorsResp},
    {32, 4, kDescribeConfigsReq, kDescribeConfigsResp},
    {36, 2, kSaslAuthenticateReq, kSaslAuthenticateResp},
    {37, 3, kCreatePartitionsReq, kTopicErrorMessageResp},
    {42, 2, kDeleteGroupsReq, kDeleteGroupsResp},
    {60, 1, kDescribeClusterReq, kThrottleErrorMessagePrefix},
    {68, 0, kGroupMemberPrefix, kGroupHeartbeatRespPrefix},
};

constexpr std::array<ApiLayout, kApiCount> make_layouts() {
  std::array<ApiLayout, kApiCount> a{};
  for (size_t i = 0; i < kApiCount; ++i) a[i] = ApiLayout{kApiNames[i], kFlexibleFrom[i], 0, {}, {}};
  for (const Parsed& p : kParsed) {
    ApiLayout& l = a[static_cast<size_t>(p.key)];
    l.max_version = p.max_version;
    l.request = p.req;
    l.response = p.resp;
  }
  return a;
}
constexpr std::array<ApiLayout, kApiCount> kLayouts = make_layouts();

// Kafka's error codes (org.apache.kafka.common.protocol.Errors), from -1.
constexpr std::string_view kErrorNames[] = {
    "UNKNOWN_SERVER_ERROR", "NONE", "OFFSET_OUT_OF_RANGE", "CORRUPT_MESSAGE", "UNKNOWN_TOPIC_OR_PARTITION",
    "INVALID_FETCH_SIZE", "LEADER_NOT_AVAILABLE", "NOT_LEADER_OR_FOLLOWER", "REQUEST_TIMED_OUT",
    "BROKER_NOT_AVAILABLE", "REPLICA_NOT_AVAILABLE", "MESSAGE_TOO_LARGE", "STALE_CONTROLLER_EPOCH",
    "OFFSET_METADATA_TOO_LARGE", "NETWORK_EXCEPTION", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE",
    "NOT_COORDINATOR", "INVALID_TOPIC_EXCEPTION", "RECORD_LIST_TOO_LARGE", "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "INVALID_REQUIRED_ACKS", "ILLEGAL_GENERATION",
    "INCONSISTENT_GROUP_PROTOCOL", "INVALID_GROUP_ID", "UNKNOWN_MEMBER_ID", "INVALID_SESSION_TIMEOUT",
    "REBALANCE_IN_PROGRESS", "INVALID_COMMIT_OFFSET_SIZE", "TOPIC_AUTHORIZATION_FAILED",
    "GROUP_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "INVALID_TIMESTAMP",
    "UNSUPPORTED_SASL_MECHANISM", "ILLEGAL_SASL_STATE", "UNSUPPORTED_VERSION", "TOPIC_ALREADY_EXISTS",
    "INVALID_PARTITIONS", "INVALID_REPLICATION_FACTOR", "INVALID_REPLICA_ASSIGNMENT", "INVALID_CONFIG",
    "NOT_CONTROLLER", "INVALID_REQUEST", "UNSUPPORTED_FOR_MESSAGE_FORMAT", "POLICY_VIOLATION",
    "OUT_OF_ORDER_SEQUENCE_NUMBER", "DUPLICATE_SEQUENCE_NUMBER", "INVALID_PRODUCER_EPOCH", "INVALID_TXN_STATE",
    "INVALID_PRODUCER_ID_MAPPING", "INVALID_TRANSACTION_TIMEOUT", "CONCURRENT_TRANSACTIONS",
    "TRANSACTION_COORDINATOR_FENCED", "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", "SECURITY_DISABLED",
    "OPERATION_NOT_ATTEMPTED", "KAFKA_STORAGE_ERROR", "LOG_DIR_NOT_FOUND", "SASL_AUTHENTICATION_FAILED",
    "UNKNOWN_PRODUCER_ID", "REASSIGNMENT_IN_PROGRESS", "DELEGATION_TOKEN_AUTH_DISABLED",
    "DELEGATION_TOKEN_NOT_FOUND", "DELEGATION_TOKEN_OWNER_MISMATCH", "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
    "DELEGATION_TOKEN_AUTHORIZATION_FAILED", "DELEGATION_TOKEN_EXPIRED", "INVALID_PRINCIPAL_TYPE",
    "NON_EMPTY_GROUP", "GROUP_ID_NOT_FOUND", "FETCH_SESSION_ID_NOT_FOUND", "INVALID_FETCH_SESSION_EPOCH",
    "LISTENER_NOT_FOUND", "TOPIC_DELETION_DISABLED", "FENCED_LEADER_EPOCH", "UNKNOWN_LEADER_EPOCH",
    "UNSUPPORTED_COMPRESSION_TYPE", "STALE_BROKER_EPOCH", "OFFSET_NOT_AVAILABLE", "MEMBER_ID_REQUIRED",
    "PREFERRED_LEADER_NOT_AVAILABLE", "GROUP_MAX_SIZE_REACHED", "FENCED_INSTANCE_ID",
    "ELIGIBLE_LEADERS_NOT_AVAILABLE", "ELECTION_NOT_NEEDED", "NO_REASSIGNMENT_IN_PROGRESS",
    "GROUP_SUBSCRIBED_TO_TOPIC", "INVALID_RECORD", "UNSTABLE_OFFSET_COMMIT", "THROTTLING_QUOTA_EXCEEDED",
    "PRODUCER_FENCED", "RESOURCE_NOT_FOUND", "DUPLICATE_RESOURCE", "UNACCEPTABLE_CREDENTIAL",
    "INCONSISTENT_VOTER_SET", "INVALID_UPDATE_VERSION", "FEATURE_UPDATE_FAILED",
    "PRINCIPAL_DESERIALIZATION_FAILURE", "SNAPSHOT_NOT_FOUND", "POSITION_OUT_OF_RANGE", "UNKNOWN_TOPIC_ID",
    "DUPLICATE_BROKER_REGISTRATION", "BROKER_ID_NOT_REGISTERED", "INCONSISTENT_TOPIC_ID",
    "INCONSISTENT_CLUSTER_ID", "TRANSACTIONAL_ID_NOT_FOUND", "FETCH_SESSION_TOPIC_ID_ERROR",
    "INELIGIBLE_REPLICA", "NEW_LEADER_ELECTED", "OFFSET_MOVED_TO_TIERED_STORAGE", "FENCED_MEMBER_EPOCH",
    "UNRELEASED_INSTANCE_ID", "UNSUPPORTED_ASSIGNOR", "STALE_MEMBER_EPOCH",
};

}  // namespace

const ApiLayout* api_layout(int16_t api_key) {
  if (api_key < 0 || static_cast<size_t>(api_key) >= kApiCount) return nullptr;
  return &kLayouts[static_cast<size_t>(api_key)];
}

std::span<const ApiLayout> api_layouts() { return kLayouts; }

std::string_view error_name(int16_t code) {
  const int i = code + 1;
  if (i < 0 || static_cast<size_t>(i) >= std::size(kErrorNames)) return {};
  return kErrorNames[static_cast<size_t>(i)];
}

}  // namespace spanfeed::kafka
