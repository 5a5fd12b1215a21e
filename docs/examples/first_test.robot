*** Settings ***
Documentation       The worked example of docs/testers-guide.md: an edited message reaches every
...                 device of the room, is stored, and shows in the history.

Resource            ../../resources/ccs.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Setup          A Team Room Where Alice And Bob Are Members And Carol Is Not
Test Teardown       Close All Devices
Test Tags           example


*** Test Cases ***
An Edited Message Reaches Every Device And Is Stored
    [Documentation]    An edit is pushed to the other members' devices and stored in place.
    [Tags]    spec:4.3-b
    Given Devices Are Connected    alice-phone    bob-tablet    bob-phone
    And "alice-phone" Sends "first draft" To "team-room"
    When "alice-phone" Edits Message 1 In "team-room" To "final words"
    Then "bob-tablet" Should Be Told Message 1 Of "team-room" Was Edited To "final words"
    And "bob-phone" Should Be Told Message 1 Of "team-room" Was Edited To "final words"
    And Message 1 Should Be Stored In "team-room" With Text "final words"
    And "bob-tablet" Should See Message 1 Of "team-room" In Its History As "final words"

Receipts Reach The Sender And Nothing Arrives Twice
    [Documentation]    bob's tablet confirms delivery; alice is told, and no message doubles.
    [Tags]    spec:4.4-e
    Given Devices Are Connected    alice-phone    bob-tablet
    And "alice-phone" Sends 3 Messages To "team-room"
    When "bob-tablet" Confirms Delivery Up To 3 In "team-room"
    Then "alice-phone" Should Be Told "bob-tablet" Received Up To 3 In "team-room"
    And "bob-tablet" Should Have Delivered Up To 3 And Read Up To 0 In "team-room"
    And "bob-tablet" Should Receive Messages 1 To 3 Of "team-room" In Order
    And "bob-tablet" Should Receive No Duplicate Within 2 Seconds

A Deleted Message Stays In The History As A Tombstone
    [Documentation]    A delete reaches the other devices; the history keeps the seq, without body.
    [Tags]    spec:4.5-d
    Given Devices Are Connected    alice-phone    bob-tablet
    And "alice-phone" Sends 2 Messages To "team-room"
    When "alice-phone" Deletes Message 1 In "team-room"
    Then "bob-tablet" Should Be Told Message 1 Of "team-room" Was Deleted
    And "bob-tablet" Should See History Of "team-room" With Seqs 1 To 2
    And "bob-tablet" Should See Message 1 Of "team-room" In Its History As Deleted
