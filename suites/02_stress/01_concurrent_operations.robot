*** Settings ***
Documentation    Seed test 2.1 - Concurrent operations.
...
...              Many devices send at once into one hot conversation and into many: seq stays
...              gapless, every member device sees one identical order, each sender's own order
...              is kept. Retries of one key racing each other store one message; two devices
...              editing one message at once produce exactly one winner and one conflict that
...              carries the current version; receipts racing from several devices end at the
...              maximum each device sent. Every test ends with the consistency checker at zero.

Resource         ../../resources/ccs.resource
Resource         ../../resources/stress.resource

Suite Setup      The Environment Is Ready
Suite Teardown   The Environment Is Released

Test Setup       The Server's Memory Is Ours Alone
Test Teardown    The Stress Test Is Cleaned Up

Test Tags        seed-2.1


*** Test Cases ***
Forty Devices Sending Into One Hot Conversation Get One Gapless Order
    [Documentation]    40 devices, all senders, one room: 800 messages at 400/s, 32,000
    ...    deliveries; the conversation's seq row lock is the contended resource.
    [Tags]    spec:1-b    spec:5.1-b    P3
    Given A Fleet "hot" Of 1 Rooms With 40 Devices Each Is Connected
    ${load}=    When Fleet "hot" Sends 800 Messages At 400 Per Second
    Then Every Send Should Have Been Acknowledged And Delivered    ${load}
    And Nothing Should Be Lost, Duplicated, Reordered Or Missing In    hot
    And Every Member Of Each Room Should Have Seen The Same Order In "hot"
    And The Figures Of The Load Are Recorded    ${load}

Devices Sending Into Fifty Conversations At Once Keep Every Conversation Gapless
    [Documentation]    200 devices in 50 rooms of 4 send 1,000 messages at 500/s.
    [Tags]    spec:1-b    P3
    Given A Fleet "many" Of 50 Rooms With 4 Devices Each Is Connected
    ${load}=    When Fleet "many" Sends 1000 Messages At 500 Per Second
    Then Every Send Should Have Been Acknowledged And Delivered    ${load}
    And Nothing Should Be Lost, Duplicated, Reordered Or Missing In    many
    And Every Member Of Each Room Should Have Seen The Same Order In "many"
    And The Figures Of The Load Are Recorded    ${load}

Each Sender's Own Order Survives Concurrent Sending
    [Documentation]    Every device pipelines its sends without waiting for acks; the checker's
    ...    ``sender_order`` count compares each device's send order with the stored seqs.
    [Tags]    spec:4.2-h    P3
    Given A Fleet "order" Of 4 Rooms With 10 Devices Each Is Connected
    ${load}=    When Fleet "order" Sends 800 Messages At 400 Per Second
    Then Every Send Should Have Been Acknowledged And Delivered    ${load}
    ${result}=    And Nothing Should Be Lost, Duplicated, Reordered Or Missing In    order
    And Should Be Equal As Integers    ${result}[counts][sender_order]    0

Retries Of One Key Racing Each Other Create One Message
    [Documentation]    The idempotency key lives in the database: racing copies of one send,
    ...    over several sockets of one device, store one row and fan out once.
    [Tags]    spec:4.2-f    P2
    Given A Fleet "retry" Of 1 Rooms With 3 Devices Each Is Connected
    When Retries Of One Key Racing 10 Times In "retry" Each Create One Message
    Then Nothing Should Be Lost, Duplicated, Reordered Or Missing In    retry

Two Devices Editing One Message At Once Produce Exactly One Winner
    [Documentation]    Only the author's user may edit, so the contenders are that user's two
    ...    devices; the loser's ``conflict`` must carry version 2 and the winner's body.
    [Tags]    spec:4.3-b    spec:4.3-c    P11
    Given A Fleet "edits" Of 1 Rooms Of 2 Users With Two Devices Each Is Connected
    When Two Devices Editing One Message At Once 10 Times In "edits" Produce One Winner Each
    Then Nothing Should Be Lost, Duplicated, Reordered Or Missing In    edits

Receipts Racing From Several Devices End At The Maximum
    [Documentation]    Five devices fire 40 shuffled delivered/read receipts each over two
    ...    sockets; each device's stored cursors end at the highest seq it confirmed.
    [Tags]    spec:4.4-c    P7
    Given A Fleet "receipts" Of 1 Rooms With 5 Devices Each Is Connected
    And Fleet "receipts" Sends 30 Messages At 100 Per Second
    When Race Receipts    receipts    devices=5    per_device=40
    Then Nothing Should Be Lost, Duplicated, Reordered Or Missing In    receipts
