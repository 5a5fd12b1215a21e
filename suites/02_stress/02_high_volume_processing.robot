*** Settings ***
Documentation    Seed test 2.2 - High-volume message processing.
...
...              Batch sends from hundreds of connections; the server's PostgreSQL connections
...              stay within its pool (pg_stat_activity) and no send fails for want of one;
...              550 connections held with no unexpected close; server RSS and CPU sampled
...              (psutil) through the run; memory returns to a plateau after connect/disconnect
...              cycles; the seed's success criteria asserted with the measured figures recorded
...              beside each threshold: connection uptime and delivery success at 100 %, the
...              database's transaction rate (pg_stat_database commits) recorded beside them.

Resource         ../../resources/ccs.resource
Resource         ../../resources/stress.resource

Suite Setup      The Environment Is Ready
Suite Teardown   The Environment Is Released

Test Teardown    The Stress Test Is Cleaned Up

Test Tags        seed-2.2


*** Variables ***
# Leak check: server RSS after each connect/disconnect cycle; the slope over the later cycles
# must stay under this (15 KiB kept per connection would show as ~4.4 MiB per cycle).
${CYCLES}                 8
${CYCLE_CONNECTIONS}      300
${RSS_SLOPE_LIMIT_MIB}    0.5


*** Test Cases ***
Batch Sends From Two Hundred Connections Stay Within The Database Pool
    [Documentation]    4,000 messages at 800/s into 20 rooms of 10 (8,000 deliveries/s) while
    ...    the server's database connections are sampled every 200 ms.
    Given A Fleet "batch" Of 20 Rooms With 10 Devices Each Is Connected
    And Start Server Monitor    interval=200ms
    ${load}=    When Fleet "batch" Sends 4000 Messages At 800 Per Second
    ${monitor}=    And Stop Server Monitor
    Then No Connection Should Have Dropped And No Delivery Gone Missing In    batch
    And Every Send Should Have Been Acknowledged And Delivered    ${load}
    And Nothing Should Be Lost, Duplicated, Reordered Or Missing In    batch
    And The Server Should Have Used At Most Its Database Pool    ${monitor}
    And The Figures Of The Load Are Recorded    ${load}

Five Hundred Fifty Connections Held Under Steady Traffic Stay Open
    [Documentation]    25 s, longer than two heartbeat intervals of the server, so pings are
    ...    answered on every connection; the seed's criteria are measured on this run.
    [Tags]    spec:3.3-a
    Given An Idle Fleet "held" Of 450 Devices Is Connected
    And A Fleet "sync" Of 10 Rooms Of 5 Users With Two Devices Each Is Connected
    And Start Server Monitor
    ${load}=    When Fleet "sync" Sends 2500 Messages At 100 Per Second
    ${monitor}=    And Stop Server Monitor
    ${live}=    Then Live Load Connections    held    sync
    And No Connection Should Have Dropped And No Delivery Gone Missing In    held    sync
    And Record Figure    concurrent_connections    ${live}    connections    >=    550
    And Record Figure    seed_concurrent_connections    ${live}    connections    >=
    ...    ${SEED_MIN_CONNECTIONS}
    And No Load Connection Should Have Closed    held    sync
    And Every Send Should Have Been Acknowledged And Delivered    ${load}
    And Nothing Should Be Lost, Duplicated, Reordered Or Missing In    sync
    And The Seed's Latency Criteria Should Hold For The Load    ${load}
    And Cross-Device Sync In "sync" Should Stay Under The Seed's Second
    And Record Figure    server_rss_max_mib    ${monitor}[rss_mib_max]    MiB
    And Record Figure    server_cpu_avg_pct    ${monitor}[cpu_pct_avg]    %

Server Memory Returns To A Plateau After Connect And Disconnect Cycles
    [Documentation]    Each cycle connects 300 devices, sends 200 messages in a steady fleet
    ...    and disconnects the 300; what a closed connection leaves behind adds up cycle after
    ...    cycle, while a plateau has a slope near zero. Holds the server memory lock, so no
    ...    other pabot process loads the server meanwhile.
    [Tags]    P14
    Given The Server's Memory Is Ours Alone
    And A Fleet "steady" Of 5 Rooms With 4 Devices Each Is Connected
    And Create Idle Fleet    churn    ${CYCLE_CONNECTIONS}
    VAR    @{rss}=    @{EMPTY}
    FOR    ${cycle}    IN RANGE    ${CYCLES}
        Connect Load Fleet    churn
        Fleet "steady" Sends 200 Messages At 400 Per Second
        Disconnect Load Fleet    churn
        ${now}=    Server Rss Mib
        Log    cycle ${cycle}: server RSS ${now} MiB
        Append To List    ${rss}    ${now}
    END
    ${slope}=    Growth Per Step Over The Later Half Of    @{rss}
    Then Record Figure    server_rss_growth_mib_per_cycle    ${slope}    MiB    <
    ...    ${RSS_SLOPE_LIMIT_MIB}
    And Nothing Should Be Lost, Duplicated, Reordered Or Missing In    steady
