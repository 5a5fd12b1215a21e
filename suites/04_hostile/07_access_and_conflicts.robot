# robocop: off=line-too-long
*** Settings ***
Documentation       Access that changes while connected, presence of strangers, idempotency keys
...                 reused with another body and edits with a stale version (P2, P11, P15).

Resource            ../../resources/hostile.resource

Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace


*** Test Cases ***
Presence Of A Stranger Is Reported Like An Unknown User
    [Documentation]    wendy is online but shares no conversation with oscar: oscar learns nothing
    ...    (offline, no devices), exactly what a user that does not exist gets.
    [Tags]    spec:4.7-c    P10    P15
    Open Authenticated Raw Connection    oscar    oscar-phone
    ${wendy}    User Id    wendy
    Raw Send Text    oscar    {"type":"presence_query","ref":"pq","user_ids":["${wendy}","nobody-at-all-0"]}
    ${reply}    Raw Next Reply    oscar
    Should Be Equal    ${reply}[type]    ack
    Should Be Equal    ${reply}[users][${wendy}]    ${reply}[users][nobody-at-all-0]
    Should Be Equal    ${reply}[users][${wendy}][status]    offline
    Should Be Empty    ${reply}[users][${wendy}][devices]
    Nothing Was Stored

Presence Of A Co-Member Is Still Visible (Control Case)
    [Documentation]    eve shares the arena with wendy, who is online: the same query shows her.
    [Tags]    spec:4.7-b    P10
    Eve Is Connected Raw
    ${wendy}    User Id    wendy
    Raw Send Text    eve    {"type":"presence_query","ref":"pq","user_ids":["${wendy}"]}
    ${reply}    Raw Next Reply    eve
    Should Be Equal    ${reply}[users][${wendy}][status]    online

A Removed Member Stops Receiving At Once
    [Documentation]    rita is removed while connected: after ``member_removed`` no message of the
    ...    arena reaches her, while the trickle goes on; her history is then forbidden.
    [Tags]    spec:5.5-b    spec:8.3-c    P15
    Connect Device    rita-phone
    Wait For Frame    rita-phone    message    conversation_id=arena
    Remove Member    arena    rita
    Wait For Frame    rita-phone    member_removed    conversation_id=arena
    No Message Of "arena" Should Follow The Removal At "rita-phone" Within 1.5 Seconds
    ${reply}    Send Command    rita-phone    history    conversation_id=arena
    Should Be Equal    ${reply}[code]    forbidden

A Removed Member Stops Receiving At Once On Another Node
    [Documentation]    nina listens on the run's other server node (same database); she is removed
    ...    through this suite's node: the other node sends ``member_removed`` and then no
    ...    message of the arena, while the trickle goes on.
    [Tags]    spec:5.5-b    spec:10-d    P15
    The Server Configuration Of This Suite Is Required
    Removed Member On Another Node Receives Nothing More    nina-phone    nina    arena    ${WS_URL}

Reusing A Client Message Id With Another Body Is Refused
    [Documentation]    Same (device, client_msg_id), different body: ``idempotency_conflict``,
    ...    the first message stays as it was, nothing new is stored.
    [Tags]    spec:4.2-g    P2
    Eve Is Connected Raw
    Raw Send Text    eve    {"type":"send","ref":"k1","conversation_id":"$ARENA","client_msg_id":"reuse-1","body":"first"}
    ${ack}    Raw Next Reply    eve
    Should Be Equal    ${ack}[type]    ack
    Snapshot Stored State
    Raw Send Text    eve    {"type":"send","ref":"k2","conversation_id":"$ARENA","client_msg_id":"reuse-1","body":"second"}
    Raw Error Should Be    eve    idempotency_conflict
    Nothing Was Stored

An Edit With A Stale Version Gets The Current One
    [Documentation]    ``conflict`` carries ``current`` (version, body, deleted); nothing changes.
    [Tags]    spec:4.3-c    P11
    Eve Is Connected Raw
    Raw Send Text    eve    {"type":"send","ref":"e1","conversation_id":"$ARENA","client_msg_id":"edit-1","body":"v1"}
    ${ack}    Raw Next Reply    eve
    Raw Send Text    eve    {"type":"edit","ref":"e2","conversation_id":"$ARENA","seq":${ack}[seq],"expected_version":1,"body":"v2"}
    ${edited}    Raw Next Reply    eve
    Should Be Equal As Integers    ${edited}[version]    ${2}
    Snapshot Stored State
    Raw Send Text    eve    {"type":"edit","ref":"e3","conversation_id":"$ARENA","seq":${ack}[seq],"expected_version":1,"body":"stale"}
    ${error}    Raw Error Should Be    eve    conflict
    Should Be Equal As Integers    ${error}[current][version]    ${2}
    Should Be Equal    ${error}[current][body]    v2
    Nothing Was Stored
