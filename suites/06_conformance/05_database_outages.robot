*** Settings ***
Documentation       What a server says when its database fails (protocol §3.1, §4.2, §8.5, §10):
...                 two reference nodes on a private PostgreSQL, a real outage and a real commit
...                 that stalls inside PostgreSQL. Tagged ``fault`` like the recovery suite and
...                 holding its lock, so no other fault test overlaps.

Resource            ../../resources/recovery.resource
Resource            ../../resources/conformance.resource

Suite Setup         Two Server Nodes Share A Private Database And Redis
Suite Teardown      Both Nodes And Every Private Service Are Released
Test Setup          A Fault Test Starts Alone
Test Teardown       Run Keywords    Release All Conversation Row Locks    AND
...                     Every Fault Is Healed    AND    Remove Commit Stall From The Private Database

Test Tags           fault    P12


*** Test Cases ***
A Hello During A Database Outage Is Unavailable And Closed With 1012
    [Documentation]    With PostgreSQL stopped a hello cannot check its device: ``unavailable``
    ...    (retryable) and close 1012; ``/health`` answers 503 ``degraded`` meanwhile.
    [Tags]    spec:3.1-h    spec:8.5-b    spec:10-a
    Stop PostgreSQL    mode=fast
    ${how}    Connect Device Expecting Failure    alice-phone
    Should Start With    ${how}    unavailable
    Should Contain    ${how}    1012
    ${node}    Reference Node Url    node-1
    ${health}    HTTP Request    ${node}    GET    /health    content_type=${None}
    Should Be Equal As Integers    ${health}[status]    ${503}
    Should Be Equal    ${health}[json][status]    degraded
    Should Be Equal    ${health}[json][database]    unavailable
    Restart PostgreSQL
    Connect Device    alice-phone

A Send Stalled Behind A Lock Is Unavailable And Never Stored Afterwards
    [Documentation]    Another transaction holds the conversation's row past the server's
    ...    deadline: the send gets ``unavailable`` (the commit was never requested), and once the
    ...    lock is gone the message neither appears in the table nor reaches bob.
    [Tags]    spec:4.2-j    spec:4.2-k
    Devices Are Connected    alice-phone    bob-phone
    ${key}    Unique Name    locked
    ${private_url}    Private PostgreSQL Url
    ${room}    Conversation Id    team-room
    ${wait}    Evaluate    ${NODE_DB_TIMEOUT_MS} * 3 / 1000
    Lock Conversation Row    ${private_url}    ${room}
    ${reply}    Send Message Expecting Reply    alice-phone    team-room    behind a lock
    ...    client_msg_id=${key}    timeout=${wait}s
    Release Conversation Row Lock    ${room}
    Should Be Equal    ${reply}[type]    error    a send that could not commit was acked: ${reply}
    Should Be Equal    ${reply}[code]    unavailable
    Mark Frames    bob-phone
    Should Not Receive Frame    bob-phone    message    window=${wait}s    client_msg_id=${key}
    Check Row Count    SELECT id FROM messages WHERE client_msg_id = '${key}'    ==    0    alias=${DB}

A Send Whose Commit Stalls Is Answered Truthfully And Stored At Most Once
    [Documentation]    The insert returns, then its COMMIT hangs in PostgreSQL past the server's
    ...    deadline: the reply is ``outcome_unknown`` (or ``unavailable`` when the server made
    ...    sure nothing was stored), never an ack. A retry with the same key after the stall
    ...    yields one message, ``duplicate`` only if the first attempt was stored, delivered once.
    [Tags]    spec:4.2-j    spec:4.2-k    spec:4.2-l    P2
    Devices Are Connected    alice-phone    bob-phone
    ${key}    Unique Name    stall
    ${private_url}    Private PostgreSQL Url
    ${seconds}    Evaluate    ${NODE_DB_TIMEOUT_MS} * 3 / 1000
    Stall Commits Of Messages With Key Prefix    ${private_url}    ${key}    ${seconds}
    ${reply}    Send Message Expecting Reply    alice-phone    team-room    stalled commit
    ...    client_msg_id=${key}    timeout=${seconds}s
    Should Be Equal    ${reply}[type]    error    a send whose commit never answered was acked: ${reply}
    Should Contain Any    ${reply}[code]    outcome_unknown    unavailable
    Should Be Equal    ${reply}[retryable]    ${True}
    Remove Commit Stall    ${private_url}
    Check Query Result    SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'
    ...    ==    ${0}    retry_timeout=${seconds * 2}s    alias=${DB}
    ${stored}    Query    SELECT count(*) FROM messages WHERE client_msg_id = '${key}'    alias=${DB}
    IF    '${reply}[code]' == 'unavailable'
        Should Be Equal As Integers    ${stored}[0][0]    ${0}    'unavailable' yet the message was stored
    END
    ${ack}    Send Message    alice-phone    team-room    stalled commit    client_msg_id=${key}
    Should Be Equal    ${ack}[duplicate]    ${{ ${stored}[0][0] == 1 }}
    Check Row Count    SELECT id FROM messages WHERE client_msg_id = '${key}'    ==    1    alias=${DB}
    Wait For Message    bob-phone    team-room    ${ack}[seq]
    Mark Frames    bob-phone
    Should Not Receive Frame    bob-phone    message    window=${SILENCE_WINDOW}    client_msg_id=${key}


*** Keywords ***
Remove Commit Stall From The Private Database
    [Documentation]    Teardown: the stall trigger never outlives its test.
    ${private_url}    Private PostgreSQL Url
    Run Keyword And Ignore Error    Remove Commit Stall    ${private_url}
