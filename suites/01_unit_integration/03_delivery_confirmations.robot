*** Settings ***
Documentation       Seed test 1.3 - Message delivery confirmations.
...
...                 Delivery and read are tracked per device in the database, the sender's devices
...                 are told, receipts never move backwards, an offline device gets its backlog in
...                 order on reconnect with nothing missing or doubled, and each message's status
...                 per device can be read through the API.

Resource            ../../resources/ccs.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Teardown       Close All Devices

Test Setup          A Team Room Where Alice And Bob Are Members And Carol Is Not
Test Tags           seed-1.3


*** Test Cases ***
Delivery And Read Are Tracked Per Device In The Database
    [Documentation]    Seed: track delivery status in the database, per device (P7).
    [Tags]    smoke    spec:1-f    spec:4.4-d    spec:9-a
    Given Devices Are Connected    alice-phone    bob-tablet    bob-phone
    And "alice-phone" Sends 3 Messages To "team-room"
    When "bob-tablet" Confirms Delivery Up To 3 In "team-room"
    And "bob-tablet" Confirms Reading Up To 2 In "team-room"
    Then "bob-tablet" Should Have Delivered Up To 3 And Read Up To 2 In "team-room"
    And "bob-phone" Should Have Delivered Up To 0 And Read Up To 0 In "team-room"

Reading A Message Also Marks It Delivered
    [Documentation]    read_upto <= delivered_upto always holds: reading implies delivery (P7).
    [Tags]    spec:1-f    spec:4.4-c
    Given Devices Are Connected    alice-phone    bob-tablet
    And "alice-phone" Sends 2 Messages To "team-room"
    When "bob-tablet" Confirms Reading Up To 2 In "team-room"
    Then "bob-tablet" Should Have Delivered Up To 2 And Read Up To 2 In "team-room"

The Sender's Devices Receive The Receipt Events
    [Documentation]    Seed: delivery confirmations and read receipts reach every device of the
    ...    sender, each as soon as it is stored (P6, P7).
    [Tags]    spec:4.4-e
    Given Devices Are Connected    alice-phone    alice-laptop    bob-tablet
    And "alice-phone" Sends 2 Messages To "team-room"
    When "bob-tablet" Confirms Delivery Up To 1 In "team-room"
    Then "alice-phone" Should Be Told "bob-tablet" Received Up To 1 In "team-room"
    And "alice-laptop" Should Be Told "bob-tablet" Received Up To 1 In "team-room"
    When "bob-tablet" Confirms Reading Up To 2 In "team-room"
    Then "alice-phone" Should Be Told "bob-tablet" Read Up To 2 In "team-room"
    And "alice-laptop" Should Be Told "bob-tablet" Read Up To 2 In "team-room"

Receipts Never Move Backwards
    [Documentation]    A stale receipt is accepted with changed=false and moves no cursor (P7).
    [Tags]    spec:4.4-c
    Given Devices Are Connected    alice-phone    bob-tablet
    And "alice-phone" Sends 3 Messages To "team-room"
    And "bob-tablet" Confirms Reading Up To 3 In "team-room"
    When "bob-tablet" Confirms Reading Up To 1 In "team-room"
    Then The Last Receipt Should Have Changed Nothing
    And "bob-tablet" Should Have Delivered Up To 3 And Read Up To 3 In "team-room"

A Receipt Beyond The Newest Message Is Rejected
    [Documentation]    A receipt above the conversation head gets out_of_range and changes nothing (P7).
    [Tags]    spec:4.4-b
    Given Devices Are Connected    alice-phone    bob-tablet
    And "alice-phone" Sends 2 Messages To "team-room"
    When "bob-tablet" Tries To Confirm Reading Up To 5 In "team-room"
    Then The Receipt Should Be Rejected As "out_of_range"
    And "bob-tablet" Should Have Delivered Up To 0 And Read Up To 0 In "team-room"

An Offline Device Receives Its Backlog In Order Before Live Messages
    [Documentation]    Seed: offline message queuing; backlog in order, no gap or duplicate, before live traffic (P8).
    [Tags]    smoke    spec:3.2-a    spec:3.2-d    spec:3.2-f
    Given Devices Are Connected    alice-phone
    And "alice-phone" Sends 5 Messages To "team-room"
    When Devices Are Connected    bob-phone
    And "alice-phone" Sends "live after the backlog" To "team-room"
    Then "bob-phone" Should Be Told "team-room" Was Fully Recovered
    And "bob-phone" Should Receive Messages 1 To 6 Of "team-room" In Order

A Reconnecting Device Resumes After Its Last Seq Without Gaps Or Duplicates
    [Documentation]    Resume names the last seq seen; only the rest is replayed (P8, P9).
    [Tags]    spec:3.2-a    spec:3.2-d
    Given Devices Are Connected    alice-phone    bob-phone
    And "alice-phone" Sends 2 Messages To "team-room"
    And "bob-phone" Should Receive Messages 1 To 2 Of "team-room" In Order
    When "bob-phone" Disconnects
    And "alice-phone" Sends 3 Messages To "team-room"
    And "bob-phone" Reconnects And Resumes
    Then "bob-phone" Should Receive Messages 3 To 5 Of "team-room" In Order

The Status Of Each Message Per Device Is Available Through The API
    [Documentation]    Per-message delivered/read status per device through the REST API (P7).
    [Tags]    smoke    spec:8.4-d
    Given Devices Are Connected    alice-phone    bob-tablet    bob-phone
    And "alice-phone" Sends "one to confirm" To "team-room"
    When "bob-tablet" Confirms Reading Up To 1 In "team-room"
    Then Status Of Message 1 In "team-room" Should Show "bob-tablet" As Delivered And Read
    And Status Of Message 1 In "team-room" Should Show "bob-phone" As Not Delivered
