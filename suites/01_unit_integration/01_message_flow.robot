*** Settings ***
Documentation       Seed test 1.1 - Database-WebSocket message flow.
...
...                 A message created through the API, sent over a WebSocket, or written straight
...                 into the database by another program is stored with the next seq of its
...                 conversation and pushed to every device of every member - the sender's other
...                 devices included - and to nobody else, within the seed's one second.

Resource            ../../resources/ccs.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Teardown       Close All Devices

Test Setup          A Team Room Where Alice And Bob Are Members And Carol Is Not
Test Tags           seed-1.1


*** Test Cases ***
A Message Created Through The API Is Stored With The Next Seq
    [Documentation]    Seed: create message via API, verify database persistence (P4, P5).
    [Tags]    smoke    spec:8.4-a    spec:9-a
    When "alice-phone" Posts "hello from the API" To "team-room" Through The API
    Then Message 1 Should Be Stored In "team-room" With Text "hello from the API"
    And Message 1 In "team-room" Should Have Been Sent By "alice-phone"
    And The Head Of "team-room" Should Be 1

A Message Created Through The API Is Pushed To Every Member Device
    [Documentation]    Seed: broadcast to connected clients, the sender's other devices included (P4, P6).
    [Tags]    smoke    spec:5.1-a    spec:8.4-a
    Given Devices Are Connected    alice-phone    alice-laptop    bob-tablet    bob-phone
    When "alice-phone" Posts "hi everyone" To "team-room" Through The API
    Then Message 1 Of "team-room" Should Reach    alice-phone    alice-laptop    bob-tablet    bob-phone
    And "bob-tablet" Should Have Received "hi everyone" As Message 1 Of "team-room"

A Message Is Not Pushed To Devices Of Non-Members
    [Documentation]    Seed: WebSocket broadcast reaches members only; carol shares no conversation (P15).
    [Tags]    spec:5.1-a
    Given Devices Are Connected    alice-laptop    carol-phone
    When "alice-phone" Posts "members only" To "team-room" Through The API
    Then Message 1 Of "team-room" Should Reach    alice-laptop
    And "carol-phone" Should Receive No Message Of "team-room"

A Message Sent Over WebSocket Is Acknowledged Only After It Is Stored
    [Documentation]    The row is read right after the ack, without retry: acknowledged means committed (P1).
    [Tags]    smoke    spec:4.2-e    spec:9-a
    Given Devices Are Connected    alice-phone
    When "alice-phone" Sends "over the socket" To "team-room"
    Then The Acknowledged Message Should Already Be Stored In "team-room"
    And Message 1 Should Be Stored In "team-room" With Text "over the socket"

A Message Sent Over WebSocket Is Broadcast To Every Member Device
    [Documentation]    Seed: WebSocket -> database -> every device, the sending connection included (P4, P6).
    [Tags]    spec:5.1-a
    Given Devices Are Connected    alice-phone    alice-laptop    bob-tablet
    When "alice-phone" Sends "hello over ws" To "team-room"
    Then Message 1 Of "team-room" Should Reach    alice-phone    alice-laptop    bob-tablet
    And "alice-laptop" Should Have Received "hello over ws" As Message 1 Of "team-room"

Messages From One Connection Are Stored And Delivered In Send Order
    [Documentation]    One gapless seq order per conversation, in send order, stored and delivered (P3).
    [Tags]    spec:1-b    spec:4.2-h    spec:5.1-b
    Given Devices Are Connected    alice-phone    bob-tablet
    When "alice-phone" Sends 5 Messages To "team-room"
    Then "team-room" Should Store The Sent Messages As Seqs 1 To 5 In Send Order
    And "bob-tablet" Should Receive Messages 1 To 5 Of "team-room" In Order

A Row Inserted Directly Into The Database Is Broadcast Like Any Other Message
    [Documentation]    Seed: database changes trigger WebSocket events, whoever wrote them (P4).
    [Tags]    smoke    spec:5.1-c    spec:9-c
    Given Devices Are Connected    alice-laptop    bob-tablet
    When Another Program Inserts "written by a batch job" Into "team-room" As "alice-phone"
    Then Message 1 Of "team-room" Should Reach    alice-laptop    bob-tablet
    And "bob-tablet" Should Have Received "written by a batch job" As Message 1 Of "team-room"

Cross-Device Delivery Latency Is Recorded And Within One Second
    [Documentation]    Seed: delivery across devices; send->receive latency is recorded per message (P6).
    Given Devices Are Connected    alice-phone    alice-laptop    bob-tablet
    When "alice-phone" Sends 20 Messages To "team-room"
    Then Delivery Latency In "team-room" Should Be Under 1000 Milliseconds For
    ...    alice-laptop    bob-tablet
