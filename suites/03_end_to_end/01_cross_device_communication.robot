*** Settings ***
Documentation       Seed test 3.1 - Cross-device communication across server nodes.
...
...                 A user is signed in on several devices that sit on different server nodes
...                 sharing one database. What one device sends reaches the others within the
...                 seed's one second (p99 recorded), receipts travel back, the database agrees
...                 with what the devices saw, and a device that was offline meanwhile catches up,
...                 in order, on whichever node it reconnects to.

Resource            ../../resources/recovery.resource

Suite Setup         Two Server Nodes Share A Private Database And Redis
Suite Teardown      Both Nodes And Every Private Service Are Released

Test Setup          A Conversation Of Alice With Three Devices And Bob With Two
Test Teardown       Close All Devices

Test Tags           seed-3.1


*** Test Cases ***
A Message Sent On Node 1 Reaches The User's Device On Node 2 Within One Second
    [Documentation]    Seed: device A (node 1) sends, device B (node 2) receives; p99 recorded (P6).
    [Tags]    smoke    spec:5.1-a    spec:10-d
    Given "alice-laptop" Is Signed In On "node-1"
    And "alice-tablet" Is Signed In On "node-2"
    And "bob-phone" Is Signed In On "node-2"
    When "alice-laptop" Sends 30 Messages To "team-room"
    Then Every Message Should Reach The Other Nodes' Devices Within One Second
    ...    alice-tablet    bob-phone
    And "alice-tablet" Should Receive Messages 1 To 30 Of "team-room" In Order

A Read On Node 2 Reaches The Sender On Node 1 And The Database Agrees
    [Documentation]    Seed: B reads, A sees the receipt, the stored cursors match (P5, P7).
    [Tags]    spec:4.4-e    spec:9-a    spec:10-d
    Given "alice-laptop" Is Signed In On "node-1"
    And "alice-tablet" Is Signed In On "node-2"
    And "alice-laptop" Sends 3 Messages To "team-room"
    When "alice-tablet" Reads "team-room" Up To 3
    Then "alice-laptop" Should See "alice-tablet" Read "team-room" Up To 3
    And "alice-tablet" Should Have Delivered Up To 3 And Read Up To 3 In "team-room"
    And "team-room" Should Store The Sent Messages As Seqs 1 To 3 In Send Order

A Device Offline Meanwhile Gets Everything In Order On The Other Node
    [Documentation]    Seed: the user's phone was offline; it reconnects to the other node and
    ...    receives every missed message, in order, once, with recovered: true (P8, P9).
    [Tags]    spec:3.2-a    spec:3.2-f
    Given "alice-phone" Is Signed In On "node-1"
    And "alice-laptop" Is Signed In On "node-1"
    And "bob-tablet" Is Signed In On "node-2"
    And "alice-laptop" Sends 2 Messages To "team-room"
    And "alice-phone" Received Messages 1 To 2 Of "team-room" Then Went Offline
    When "alice-laptop" Sends 4 Messages To "team-room"
    And "bob-tablet" Sends 4 Messages To "team-room"
    And "alice-phone" Reconnects To "node-2"
    Then "alice-phone" Should Be Told "team-room" Was Recovered From Seq 2
    And "alice-phone" Should Receive Messages 3 To 10 Of "team-room" In Order


*** Keywords ***
"${device}" Is Signed In On "${node}"
    [Documentation]    Connects the device to that node; it never reconnects by itself.
    ${welcome}    Connect Device To Node    ${device}    ${node}
    Should Be Equal    ${welcome}[node_id]    ${node}
    ...    "${device}" expected a welcome from ${node}, got ${welcome}

Every Message Should Reach The Other Nodes' Devices Within One Second
    [Documentation]    Latency of every sent message at every named device; p99 recorded.
    [Arguments]    @{devices}
    Cross Node Delivery Should Be Within    team-room    ${SENT_IDS}    ${devices}
    ...    limit_ms=${LATENCY_LIMIT_MS}    timeout=${DELIVERY_TIMEOUT}

"${device}" Reads "${conversation}" Up To ${seq:\d+}
    [Documentation]    Sends a ``read`` receipt.
    Send Receipt    ${device}    ${conversation}    read    ${seq}

"${watcher}" Should See "${reader}" Read "${conversation}" Up To ${seq:\d+}
    [Documentation]    The ``receipt`` event reaches another device of the same user on the other node.
    ${ids}    Device Ids Of Fixture    ${reader}
    ${conv}    Conversation Id    ${conversation}
    Wait For Frame    ${watcher}    receipt    timeout=${DELIVERY_TIMEOUT}
    ...    conversation_id=${conv}    device_id=${ids}[device_id]    read_upto=${seq}

"${device}" Received Messages ${first:\d+} To ${last:\d+} Of "${conversation}" Then Went Offline
    [Documentation]    The device saw first..last, disconnected cleanly and is offline in the database.
    "${device}" Should Receive Messages ${first} To ${last} Of "${conversation}" In Order
    Disconnect Device    ${device}
    "${device}" Should Be "offline" In The Database

"${device}" Reconnects To "${node}"
    [Documentation]    Connects again, now to ``node``, naming its last seq per conversation.
    ${welcome}    Connect Device To Node    ${device}    ${node}    resume=${True}
    Should Be Equal    ${welcome}[node_id]    ${node}
    VAR    ${WELCOME}    ${welcome}    scope=TEST    # robocop: off=no-test-variable

"${device}" Should Be Told "${conversation}" Was Recovered From Seq ${seq:\d+}
    [Documentation]    The welcome of the reconnect: ``recovered: true`` and ``from_seq``.
    ${conv}    Conversation Id    ${conversation}
    VAR    ${info}    ${WELCOME}[conversations][${conv}]
    Should Be True    ${info}[recovered] is True    "${device}" expected recovered: true, got ${info}
    Should Be Equal As Integers    ${info}[from_seq]    ${{int($seq)}}
    ...    "${device}" expected replay from seq ${seq}, got ${info}
