# robocop: off=line-too-long
*** Settings ***
Documentation       Limits with explicit codes (P14, P15): the per-connection rate, the per-user
...                 connection cap, a client that stops reading and a client that never answers
...                 pings. These need the suite's own server node (low limits, short heartbeat).

Resource            ../../resources/hostile.resource

Test Tags           spec:7-a
Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Teardown       The Case Left No Trace

Test Setup          Run Keywords    The Server Configuration Of This Suite Is Required    AND
...                     Snapshot Stored State


*** Test Cases ***
A Send Flood From One Connection Is Rate Limited Then Closed With 4002
    [Documentation]    Four times the rate in one burst: the excess gets ``rate_limited`` with
    ...    ``retry_after_ms``, repeated excess closes with 4002, only acknowledged sends are
    ...    stored, and the client may reconnect at once.
    [Tags]    spec:4.1-f    P15
    ${before}    Messages Stored By    eve-laptop
    ${token}    Hostile Token    valid    eve-laptop
    Open Raw Connection    flood    ${token}
    Raw Next Reply    flood
    ${count}    Evaluate    ${RATE_LIMIT} * 4
    Raw Send Burst    flood    {"type":"send","ref":"f$N","conversation_id":"$ARENA","client_msg_id":"flood-$N","body":$N}    ${count}
    ${acks}    ${limited}    Count Replies Until Close    flood
    ${how}    Raw Close Code    flood
    Should End With    ${how}    4002
    Should Be True    0 < ${acks} <= ${RATE_LIMIT} * 2    ${acks} sends acknowledged
    Should Be True    ${limited} > ${RATE_LIMIT}    ${limited} rate_limited errors
    ${after}    Messages Stored By    eve-laptop
    Should Be Equal As Integers    ${after}    ${{${before} + ${acks}}}
    ${again}    Open Authenticated Raw Connection    flood-again    eve-laptop
    Should Be Equal    ${again}[type]    welcome

Connections Over The Per-User Cap Are Refused
    [Documentation]    With the token on the upgrade: HTTP 429; in hello: ``rate_limited`` then 4005.
    [Tags]    spec:3-a    spec:3.1-g    P15
    FOR    ${device}    IN    cap-1    cap-2    cap-3
        Open Authenticated Raw Connection    ${device}    ${device}
    END
    ${how}    Connection Attempt Outcome    cap-4    valid    header
    Should Be Equal    ${how}    HTTP 429 rate_limited
    ${how}    Connection Attempt Outcome    cap-4    valid    hello
    Should Be Equal    ${how}    rate_limited 4005
    Nothing Was Stored

A Client That Stops Reading Is Closed With 4001 And Others Keep Their Latency
    [Documentation]    A tiny receive buffer and no reads while 16 MB of messages pour into
    ...    another conversation: the send queue (600 frames) overflows and the server closes
    ...    with 4001 (reconnect allowed); the bystander receives everything meanwhile with its
    ...    latency bounded.
    [Tags]    spec:4.1-g    P14
    ${mark}    Bystander Latency Mark
    ${calm}    Bystander Max Latency Since    ${mark - 3}
    ${during}    Bystander Latency Mark
    ${how}    Slow Consumer Close Code    eve-laptop    flood-room    rows=1000    body_bytes=16000
    Should End With    ${how}    4001
    Bystander Should Have Received Everything    timeout=15s
    ${worst}    Bystander Max Latency Since    ${during}
    Should Be True    ${worst} < max(1500, ${calm} * 10)    bystander latency ${worst} ms during, ${calm} ms before

A Client That Never Answers Pings Is Closed With 4004
    [Documentation]    Pings every 0.5 s, no pong and nothing else for 3 s: close 4004.
    [Tags]    spec:3.3-a    P10
    ${token}    Hostile Token    valid    oscar-phone
    Open Raw Connection    mute    ${token}
    Raw Next Reply    mute
    ${how}    Raw Close Code    mute    timeout=8s
    Should Be Equal    ${how}    - 4004
    Nothing Was Stored
