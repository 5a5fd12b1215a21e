*** Settings ***
Documentation    Seed tests 2.1 and 2.2 with load from a Locust master and two workers.
...
...              Three hundred devices in rooms of ten are dealt round robin to two Locust
...              worker processes, so every room has members on both; each device is a Locust
...              user that connects, says hello, sends into its room at a steady rate (open
...              loop), confirms delivery and reconnects with resume if the server closes it.
...              After about 20 s the master gathers every worker's per-message records through
...              Locust's custom messages and runs the consistency checker over all of them
...              with the stored rows: nothing lost, duplicated, reordered or missing across
...              workers. The kit's figures and Locust's own are recorded against thresholds.
...              Workers on other machines: docs/distributed-load.md.

Resource         ../../resources/ccs.resource
Resource         ../../resources/stress.resource

Suite Setup      The Environment Is Ready
Suite Teardown   The Environment Is Released
Test Teardown    The Distributed Load Is Cleaned Up

Test Tags        seed-2.2    distributed    P1    P3    P5


*** Variables ***
${WORKERS}        2
${ROOMS}          30
${MEMBERS}        10
# Messages per second into each room (all its senders together): 150 msgs/s, 1,500 deliveries/s.
${RATE}           5
${DURATION}       20s


*** Test Cases ***
Three Hundred Devices On Two Locust Workers Lose Nothing
    [Documentation]    30 rooms of 10 on two workers, 5 msgs/s per room for 20 s; the checker
    ...    runs over both workers' records and the stored rows.
    Given The Server's Memory Is Ours Alone
    When Start Distributed Load    ${SUT_URL}    workers=${WORKERS}    rooms=${ROOMS}
    ...    members=${MEMBERS}    rate=${RATE}    duration=${DURATION}
    ...    output=${OUTPUT DIR}/distributed
    And Wait For Distributed Load To Finish
    Then Every Distributed Device Should Have Come Online
    And Distributed Load Should Have Lost Nothing
    And Record Distributed Load Figures
    And Distributed Load Latency Should Meet The Seed's Criteria


*** Keywords ***
The Distributed Load Is Cleaned Up
    [Documentation]    Stops the Locust processes if a step failed early, then the stress cleanup.
    Stop Distributed Load
    The Stress Test Is Cleaned Up
