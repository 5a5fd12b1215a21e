*** Settings ***
Documentation       Seed test 1.2 - Real-time presence management.
...
...                 Connecting puts a device online in the database and tells the other members;
...                 a user stays online while any of their devices is; when the last one leaves
...                 the user is offline with a last-seen time; a user's own devices see each other.

Resource            ../../resources/ccs.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Teardown       Close All Devices

Test Setup          A Team Room Where Alice And Bob Are Members And Carol Is Not
Test Tags           seed-1.2


*** Test Cases ***
A Device That Connects Is Online In The Database
    [Documentation]    Seed: user connects -> presence status stored (P10).
    [Tags]    smoke    spec:5.4-a    spec:5.4-e
    When Devices Are Connected    alice-phone
    Then "alice-phone" Should Be "online" In The Database
    And User "alice" Should Be "online" Through The API

Other Members Are Told When A Device Comes Online
    [Documentation]    Seed: real-time presence update to the members who share a conversation (P10).
    [Tags]    smoke    spec:5.4-d
    Given Devices Are Connected    bob-tablet
    When Devices Are Connected    alice-phone
    Then "bob-tablet" Should Be Told "alice-phone" Is "online"

A Second Device Of The Same User Comes Online Too
    [Documentation]    Presence is tracked per device; both of alice's devices are online (P10).
    [Tags]    spec:5.4-d
    Given Devices Are Connected    bob-tablet    alice-phone
    When Devices Are Connected    alice-laptop
    Then "bob-tablet" Should Be Told "alice-laptop" Is "online"
    And "alice-phone" Should Be "online" In The Database
    And "alice-laptop" Should Be "online" In The Database

When One Device Leaves The User Stays Online
    [Documentation]    A user is online while any of their devices is (P10).
    [Tags]    spec:1-g    spec:5.4-a
    Given Devices Are Connected    bob-tablet    alice-phone    alice-laptop
    When "alice-phone" Disconnects
    Then "bob-tablet" Should Be Told "alice-phone" Is "offline" While Its User Is "online"
    And "alice-phone" Should Be "offline" In The Database
    And "alice-laptop" Should Be "online" In The Database
    And User "alice" Should Be "online" Through The API

When All Devices Leave The User Is Offline With A Last Seen Time
    [Documentation]    The last device leaving makes the user offline, with last_seen stored (P10).
    [Tags]    spec:1-g    spec:5.4-a    spec:5.4-e
    Given Devices Are Connected    bob-tablet    alice-phone    alice-laptop
    When "alice-phone" Disconnects
    And "alice-laptop" Disconnects
    Then "bob-tablet" Should Be Told User "alice" Is "offline"
    And "alice-phone" Should Be Offline In The Database With A Recent Last Seen
    And "alice-laptop" Should Be Offline In The Database With A Recent Last Seen
    And User "alice" Should Be "offline" Through The API

A User's Own Devices See Each Other's Presence
    [Documentation]    Seed: cross-device presence synchronisation (P6, P10).
    [Tags]    spec:5.4-d    spec:4.7-a
    Given Devices Are Connected    alice-laptop
    When Devices Are Connected    alice-phone
    Then "alice-laptop" Should Be Told "alice-phone" Is "online"
    When "alice-phone" Sets Its Presence To "away"
    Then "alice-laptop" Should Be Told "alice-phone" Is "away"
    And "alice-phone" Should Be "away" In The Database

A Device That Loses Its Network Goes Offline
    [Documentation]    An abrupt loss (no close frame) also ends in offline, within the heartbeat timeout (P10).
    [Tags]    spec:5.4-a    spec:3.3-a
    Given Devices Are Connected    bob-tablet    alice-phone
    When "alice-phone" Loses Its Network
    Then "bob-tablet" Should Be Told "alice-phone" Is "offline" While Its User Is "offline"
    And "alice-phone" Should Be Offline In The Database With A Recent Last Seen

Presence Is Not Shared With Users Outside The User's Conversations
    [Documentation]    Presence goes only to those who share a conversation (P10, P15).
    [Tags]    spec:5.4-d
    Given Devices Are Connected    carol-phone
    When Devices Are Connected    alice-phone
    Then "carol-phone" Should Not Be Told About "alice-phone"
