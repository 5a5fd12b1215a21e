*** Settings ***
Documentation       Seed test 3.2 - Error recovery and resilience under real faults.
...
...                 Every test runs under live traffic (three devices on two nodes sending
...                 ${TRAFFIC_RATE} messages/s through the reference client), injects a real fault
...                 (a process killed, a connection terminated or cut, a link stalled) and ends with
...                 the consistency checker at zero: nothing acknowledged lost, nothing doubled,
...                 every device's stream in order and complete. Sends refused during an outage
...                 stay in the client's outbox and are retried with the same key (P12, P13).
...
...                 Tagged ``fault``: excluded from the default run, run by ``make faults``; the
...                 fast ones also carry ``fast-fault`` and run in ``make test``. Each test holds the
...                 PabotLib lock ``${FAULT_LOCK}``, so fault tests never overlap under pabot.

Resource            ../../resources/recovery.resource

Suite Setup         Two Server Nodes Share A Private Database And Redis
Suite Teardown      Both Nodes And Every Private Service Are Released

Test Setup          A Fault Test Starts Alone
Test Teardown       Every Fault Is Healed

Test Tags           seed-3.2    fault


*** Variables ***
# A read on a dead database link: refused after the node's database timeout, with room to spare.
${READ_REFUSAL_LIMIT}       6s
# The senders on node 1 in "Live Traffic Flows Between Devices On Both Nodes".
@{NODE_1_SENDERS}           alice-laptop    alice-phone


*** Test Cases ***
Acknowledged Messages Survive A Database Kill -9 And Restart
    [Documentation]    kill -9 of PostgreSQL under traffic: sends get ``unavailable``, are retried
    ...    from the outbox, recovery (database back -> first ack) within ${RECOVERY_LIMIT} (P1, P12).
    [Tags]    fast-fault    spec:4.2-j    spec:10-b
    Given Live Traffic Flows Between Devices On Both Nodes
    When Kill PostgreSQL
    Then Sends During The Outage Should Be Refused As Unavailable
    When Restart PostgreSQL
    Then Recovery Time Should Be At Most    db_kill    ${RECOVERY_LIMIT}
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered
    And Refused Sends Should Be Stored Once    unavailable

A Send In Flight When The Database Is Killed Is Never Acknowledged Falsely
    [Documentation]    carol's send waits inside PostgreSQL on a row lock another program holds
    ...    when PostgreSQL is killed -9: the reply is ``unavailable`` or ``outcome_unknown``,
    ...    never an ack. After the restart nothing is stored if it said ``unavailable``, and a
    ...    retry with the same key tells the truth: stored once, a duplicate only if the first
    ...    attempt could have been stored (P1, P12).
    [Tags]    fast-fault    spec:4.2-j    spec:4.2-k    spec:4.2-l    spec:10-b
    Given Live Traffic Flows Between Devices On Both Nodes
    And "carol-phone" Has A Send Of "in-flight-1" Waiting Inside PostgreSQL
    When Kill PostgreSQL
    ${code}    Then The Send In Flight Of "carol-phone" Should Be Refused As Unavailable Or Outcome Unknown
    When Restart PostgreSQL
    Then A Retry Of "in-flight-1" By "carol-phone" After "${code}" Should Tell The Truth
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered
    [Teardown]    Run Keywords    Release Conversation Row Locks    AND    Every Fault Is Healed

Sends Made While The Database Is Down Are Retried From The Outbox After Recovery
    [Documentation]    A longer, clean outage (fast shutdown): every send meanwhile is refused
    ...    within 5 s as ``unavailable``, never acknowledged, and stored exactly once after (P12).
    [Tags]    spec:4.2-j    spec:4.2-k    spec:10-a    spec:10-b
    Given Live Traffic Flows Between Devices On Both Nodes
    When Stop PostgreSQL    mode=fast
    Then Sends During The Outage Should Be Refused As Unavailable    count=6
    When Restart PostgreSQL
    Then Recovery Time Should Be At Most    db_stop    ${RECOVERY_LIMIT}
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered
    And Refused Sends Should Be Stored Once    unavailable

The Server Recovers When Its Pooled Database Connections Are Terminated
    [Documentation]    ``pg_terminate_backend`` of every pooled connection of both nodes (P12).
    [Tags]    spec:10-b
    Given Live Traffic Flows Between Devices On Both Nodes
    When Terminate Database Backends    application_name=ccs-pool node-1
    And Terminate Database Backends    application_name=ccs-pool node-2
    Then Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered

Delivery Continues When The Listener Connection Is Terminated
    [Documentation]    ``pg_terminate_backend`` of both nodes' LISTEN connections: each node
    ...    listens again without a restart and repairs what it missed from the table (P4, P12).
    [Tags]    fast-fault    spec:5.1-d
    Given Live Traffic Flows Between Devices On Both Nodes
    When Terminate Listener Of Node    node-1
    And Terminate Listener Of Node    node-2
    Then Node Should Listen Again    node-1
    And Node Should Listen Again    node-2
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered

An Edit Made While Node 1 Cannot Reach The Database Is Still Told To Its Devices
    [Documentation]    node 1's database link cut while bob edits message 1 through node 2, so
    ...    node 1 never gets that notification. Once the link is back, node 1 listens again, finds
    ...    the edit in the table, tells alice's laptop, connected to it all along, and counts the
    ...    repair in ``ccs_gaps_repaired_total`` (P4, P11, P18).
    [Tags]    fast-fault    spec:5.1-d
    Given "alice-laptop" Is Connected To Node "node-1"
    And "bob-tablet" Is Connected To Node "node-2"
    And "bob-tablet" Sends "first draft" To "team-room"
    And "alice-laptop" Should Have Received "first draft" As Message 1 Of "team-room"
    And Node Should Finish Repair Sweeps    node-1
    ${repaired}    And Server Metric    ccs_gaps_repaired_total
    When Cut Proxy    db-link-1
    And "bob-tablet" Edits Message 1 In "team-room" To "final text"
    And Restore Proxy    db-link-1
    Then Node Health Should Report    node-1    listener    listening
    And "alice-laptop" Should Be Told Message 1 Of "team-room" Was Edited To "final text"
    And Server Metric Should Rise Above    ccs_gaps_repaired_total    ${repaired}

The Server Recovers When Its Database Link Stalls And Heals
    [Documentation]    node 1's link to PostgreSQL blackholed (TCP proxy stall): its senders get
    ...    ``unavailable`` instead of hanging; after the link heals node 1 serves again (P12).
    [Tags]    spec:4.2-j    spec:10-a
    Given Live Traffic Flows Between Devices On Both Nodes
    When Stall Proxy    db-link-1
    Then Sends During The Outage Should Be Refused As Unavailable    count=2
    When Restore Proxy    db-link-1
    Then Recovery Time Should Be At Most    proxy_stall    ${RECOVERY_LIMIT}
    ...    devices=${NODE_1_SENDERS}
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered

A Read On A Stalled Database Link Is Refused In Time, Not Left Hanging
    [Documentation]    node 1's link to PostgreSQL blackholed: a ``history`` request on node 1
    ...    gets a retryable ``unavailable`` about ``CCS_DB_TIMEOUT_MS`` (${NODE_DB_TIMEOUT_MS} ms
    ...    here) after it arrived, within ${READ_REFUSAL_LIMIT}, instead of hanging (P12).
    [Tags]    fast-fault    spec:10-a
    Given "alice-laptop" Is Connected To Node "node-1"
    And "alice-laptop" Should Be "online" In The Database
    When Stall Proxy    db-link-1
    Then A History Request Of "alice-laptop" In "team-room" Should Be Refused As Unavailable
    [Teardown]    Every Fault Is Healed

Dropped WebSocket Connections Resume With Everything Recovered
    [Documentation]    Every client connection to node 1 reset by the network (TCP proxy cut):
    ...    the clients reconnect by themselves, resume with recovered: true, flush their
    ...    outboxes, and nothing is missed or doubled (P8, P9, P13).
    [Tags]    fast-fault    spec:3.2-f
    Given Live Traffic Flows With Alice Behind The Client Link
    When Cut Proxy    ws-link
    And Restore Proxy    ws-link
    Then "alice-laptop" Should Have Reconnected To "node-1" After Close 1006 With Everything Recovered
    And "alice-phone" Should Have Reconnected To "node-1" After Close 1006 With Everything Recovered
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered

The Clients Of A Killed Node Continue On Another Node
    [Documentation]    kill -9 of node 1: its clients fail over to node 2, resume there and
    ...    re-send what node 1 never acknowledged (P1, P13).
    [Tags]    spec:10-d
    Given Live Traffic Flows Between Devices On Both Nodes
    When Node "node-1" Is Killed
    Then "alice-laptop" Should Have Reconnected To "node-2" After Close 1006 With Everything Recovered
    And "alice-phone" Should Have Reconnected To "node-2" After Close 1006 With Everything Recovered
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered

The Clients Of A Node Shut Down Gracefully Are Told 1012 And Continue Elsewhere
    [Documentation]    SIGTERM of node 1: in-flight sends are acknowledged, sockets close with
    ...    1012 service restart, the clients continue on node 2 (P17).
    [Tags]    spec:7-d
    Given Live Traffic Flows Between Devices On Both Nodes
    When Stop Reference Node    node-1
    Then "alice-laptop" Should Have Reconnected To "node-2" After Close 1012 With Everything Recovered
    And "alice-phone" Should Have Reconnected To "node-2" After Close 1012 With Everything Recovered
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered

A Send In Flight When Its Node Shuts Down Gracefully Is Acknowledged Before The Close
    [Documentation]    SIGTERM of node 1 while carol's send waits inside PostgreSQL on a row
    ...    lock: once the lock is released the node finishes that command, acknowledges it, and
    ...    only then closes the connection with 1012 (P17, P1).
    [Tags]    fast-fault    spec:7-d
    Given "carol-phone" Has A Send Of "in-flight-shutdown" Waiting Inside PostgreSQL
    When Node "node-1" Is Asked To Shut Down
    And Release Conversation Row Locks
    Then The Send In Flight Of "carol-phone" Should Be Acknowledged Before Close 1012
    And Node "node-1" Should Exit By Itself
    [Teardown]    Run Keywords    Release Conversation Row Locks    AND    Every Fault Is Healed

The Devices Of A Killed Node Go Offline Within The Node Lease
    [Documentation]    kill -9 of node 1 with a device that does not reconnect: the surviving
    ...    node learns within the lease that it is offline, tells those who share a
    ...    conversation with it, and stores it (P10).
    [Tags]    spec:5.4-c
    Given Live Traffic Flows Between Devices On Both Nodes
    And "alice-tablet" Is Connected To "node-1" Without Reconnecting
    When Node "node-1" Is Killed
    Then "bob-tablet" Should Be Told "alice-tablet" Went Offline Within 15 Seconds
    And "alice-tablet" Should Be "offline" In The Database
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered

Messages Keep Flowing When Redis Is Killed And The Nodes Use It Again
    [Documentation]    kill -9 of Redis (presence leases, cross-node events): PostgreSQL stays the
    ...    source of truth so nothing is lost; after its restart both nodes report it ``ok`` (P12).
    [Tags]    spec:10-c
    Given Live Traffic Flows Between Devices On Both Nodes
    When Kill Redis
    Then Traffic Keeps Flowing
    When Restart Redis
    Then Node Health Should Report    node-1    redis    ok
    And Node Health Should Report    node-2    redis    ok
    And Traffic Keeps Flowing
    And No Message Was Lost, Doubled Or Reordered


*** Keywords ***
Sends During The Outage Should Be Refused As Unavailable
    [Documentation]    At least ``count`` sends answered with the retryable ``unavailable``, each
    ...    within 5 s of being sent (P12).
    [Arguments]    ${count}=1
    ${errors}    Wait For Send Errors    unavailable    count=${count}    timeout=15s
    FOR    ${error}    IN    @{errors}
        Should Be True    ${error}[latency_s] <= 5
        ...    expected "unavailable" within 5 s of the send, got it after ${error}[latency_s] s: ${error}
    END

"${device}" Has A Send Of "${key}" Waiting Inside PostgreSQL
    [Documentation]    ``device`` of user carol, alone in "side-room" on node 1, sends ``key``
    ...    while another program holds the room's row locked: the send is running in the
    ...    database (waiting for the lock) when this returns.
    User "carol" With Devices    ${device}
    Create Conversation    side-room    carol
    Connect Device    ${device}
    Hold Conversation Row Lock    side-room
    Start Sending    ${device}    side-room    in flight at the kill    ${key}
    Wait Until A Server Write Waits On A Lock

The Send In Flight Of "${device}" Should Be Refused As Unavailable Or Outcome Unknown
    [Documentation]    The reply is a retryable ``unavailable`` or ``outcome_unknown`` error, never
    ...    an ack; returns its code.
    ${reply}    Reply To Started Send    ${device}
    Should Be Equal    ${reply}[type]    error
    ...    expected the send in flight at the kill to be refused, got ${reply}
    Should Contain Any    ${reply}[code]    unavailable    outcome_unknown
    ...    msg=expected unavailable or outcome_unknown for the send in flight, got ${reply}
    Should Be True    ${reply}[retryable]    expected a retryable refusal, got ${reply}
    RETURN    ${reply}[code]

A Retry Of "${key}" By "${device}" After "${code}" Should Tell The Truth
    [Documentation]    After ``unavailable`` nothing was stored, and the retry with the same key
    ...    stores it now (``duplicate: false``); after ``outcome_unknown`` the retry may be either.
    ...    Either way the key is stored exactly once, at the seq the retry's ack names.
    IF    $code == 'unavailable'
        Stored Value Should Be    SELECT count(*) FROM messages WHERE client_msg_id = %s    0
        ...    ${key}    what=expected nothing stored for a send answered unavailable    timeout=5s
    END
    # the nodes may still be reconnecting to the restarted database: a retryable refusal is
    # allowed, and the client retries with the same key as the protocol says
    ${ack}    Wait Until Keyword Succeeds    15s    1s    Send Message    ${device}    side-room
    ...    in flight at the kill    client_msg_id=${key}
    IF    $code == 'unavailable'
        Should Not Be True    ${ack}[duplicate]
        ...    a send answered unavailable was found stored on retry: ${ack}
    END
    Stored Value Should Be    SELECT seq FROM messages WHERE client_msg_id = %s    ${ack}[seq]
    ...    ${key}    what=expected the key stored once, at seq ${ack}[seq]

"${device}" Is Connected To "${node}" Without Reconnecting
    [Documentation]    A plain connection (no automatic reconnect) to that node.
    ${url}    Reference Node Websocket Url    ${node}
    Connect Resilient Device    ${device}    ${url}
    Disable Reconnect    ${device}

"${watcher}" Should Be Told "${device}" Went Offline Within ${seconds:\d+} Seconds
    [Documentation]    A ``presence`` frame saying the device is offline reaches the watcher in time
    ...    (a killed node's devices: its lease of 5 s plus slack).
    ${ids}    Device Ids Of Fixture    ${device}
    Wait For Frame    ${watcher}    presence    timeout=${seconds}s
    ...    device_id=${ids}[device_id]    status=offline

A History Request Of "${device}" In "${conversation}" Should Be Refused As Unavailable
    [Documentation]    The reply to ``history`` is the error ``unavailable`` (retryable), and it
    ...    comes within ``READ_REFUSAL_LIMIT``.
    ${reply}    Send Command    ${device}    history    timeout=${READ_REFUSAL_LIMIT}
    ...    conversation_id=${conversation}    limit=${10}
    Should Be Equal    ${reply}[type]    error    expected unavailable, got ${reply}    values=False
    Should Be Equal    ${reply}[code]    unavailable    expected unavailable, got ${reply}
    ...    values=False
    Should Be True    ${reply}[retryable]    expected a retryable refusal, got ${reply}

Node "${name}" Should Exit By Itself
    [Documentation]    The node's process ends (its graceful shutdown finished) within 30 s.
    ${pid}    Reference Node PID    ${name}
    Wait For Process Exit    ${pid}    timeout=30s

Node "${name}" Is Asked To Shut Down
    [Documentation]    SIGTERM to the node's process; does not wait for it to exit.
    ${pid}    Reference Node PID    ${name}
    Kill Process    ${pid}    TERM

The Send In Flight Of "${device}" Should Be Acknowledged Before Close ${code:\d+}
    [Documentation]    The started send gets its ``ack`` (the command finished), and the connection
    ...    closes afterwards with ``code``.
    ${reply}    Reply To Started Send    ${device}
    Should Be Equal    ${reply}[type]    ack
    ...    expected the send in flight at the shutdown to be acknowledged, got ${reply}    values=False
    ${closed}    Device Close Code    ${device}    timeout=15s
    Should Start With    ${closed}    ${code}    expected close ${code} after the ack, got ${closed}

Node "${name}" Is Killed
    [Documentation]    kill -9 of the node's process (recorded on the fault timeline).
    ${pid}    Reference Node PID    ${name}
    Kill Process    ${pid}
    Wait For Process Exit    ${pid}
